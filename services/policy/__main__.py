from services.base import main
from services.policy.service import PolicyService

main(PolicyService)
