from services.base import main
from services.power.service import PowerService

main(PowerService)
