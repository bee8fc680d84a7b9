import Testing
@testable import Torch
