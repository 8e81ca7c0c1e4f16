from services.base import main
from services.biometric.service import BiometricService

main(BiometricService)
