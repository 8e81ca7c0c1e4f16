from services.base import main
from services.gateway.service import GatewayService

main(GatewayService)
