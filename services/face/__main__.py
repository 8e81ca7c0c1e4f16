from services.base import main
from services.face.service import FaceService

main(FaceService)
