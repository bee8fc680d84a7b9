import Testing
@testable import DetectionData
