from services.base import main
from services.bridge.service import BridgeService

main(BridgeService)
