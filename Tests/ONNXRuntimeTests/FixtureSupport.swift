import Foundation
import XCTest

extension XCTestCase {
    /// conv_relu_add.onnx (scripts/reference/make_onnx_fixtures.py): conv = Conv(x, W, B) with
    /// filter 0 = [[1, 0], [0, -1]], bias 0 and filter 1 = all 0.5, bias -10; y = Relu(conv) + C
    /// with C = [1, 0.25] per channel. x is [batch, 1, 3, 3].
    func fixturePath() throws -> String {
        try XCTUnwrap(Bundle.module.url(forResource: "conv_relu_add", withExtension: "onnx", subdirectory: "Fixtures")).path
    }

    /// A fresh directory, removed when the test ends.
    func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-ort-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }
}
