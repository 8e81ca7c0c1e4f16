from services.base import main
from services.ble.service import BleService

main(BleService)
