from services.base import main
from services.watchdog.service import WatchdogService

main(WatchdogService)
