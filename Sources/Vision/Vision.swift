import Torch
import DetectionData
