from services.base import main
from services.keypad.service import KeypadService

main(KeypadService)
