from services.base import main
from services.motor.service import MotorService

main(MotorService)
