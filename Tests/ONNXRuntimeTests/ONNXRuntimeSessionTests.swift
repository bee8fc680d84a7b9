import Foundation
import ONNXRuntime
import XCTest

/// The bridge against the real libonnxruntime (installed by `scripts/install.sh --deps`). These
/// tests do not skip when it is missing: they fail with the library error, which says where it
/// looked and how to install it.
final class ONNXRuntimeSessionTests: XCTestCase {
    func testLibraryLoadsFromTheDefaultPlaces() throws {
        let library = try ONNXRuntimeLibrary()
        XCTAssertFalse(library.version.isEmpty)
        XCTAssertTrue(library.path.contains("libonnxruntime"), library.path)
    }

    func testModelDescribesItsInputsAndOutputs() throws {
        let session = try ONNXRuntimeSession(modelPath: fixturePath())
        XCTAssertEqual(session.threads, 1)
        XCTAssertEqual(session.inputNames, ["x"])
        XCTAssertEqual(session.outputNames, ["y", "conv"])
        XCTAssertEqual(session.inputShapes, [[-1, 1, 3, 3]])  // the batch is symbolic
        XCTAssertEqual(session.outputShapes, [[-1, 2, 2, 2], [-1, 2, 2, 2]])
    }

    func testRunGivesTheHandComputedNumbers() throws {
        let session = try ONNXRuntimeSession(modelPath: fixturePath(), threads: 1)
        // x = 1...9 in a 3x3 grid.
        // Filter 0: x[i][j] - x[i+1][j+1] = -4 everywhere; Relu -> 0; + 1 -> 1.
        // Filter 1: windows sum to 12, 16, 24, 28; halved minus 10: -4, -2, 2, 4; Relu: 0, 0, 2, 4;
        // + 0.25: 0.25, 0.25, 2.25, 4.25.
        let outputs = try session.run((1...9).map(Float.init), shape: [1, 1, 3, 3])
        XCTAssertEqual(outputs.map(\.name), ["y", "conv"])
        XCTAssertEqual(outputs[0].shape, [1, 2, 2, 2])
        XCTAssertEqual(outputs[0].values, [1, 1, 1, 1, 0.25, 0.25, 2.25, 4.25])
        XCTAssertEqual(outputs[1].shape, [1, 2, 2, 2])
        XCTAssertEqual(outputs[1].values, [-4, -4, -4, -4, -4, -2, 2, 4])
    }

    func testSymbolicBatchTakesTwoImages() throws {
        let session = try ONNXRuntimeSession(modelPath: fixturePath())
        // Image 2 is -(1...9): filter 0 gives +4 (Relu keeps it, + 1 = 5); filter 1 gives
        // -6 - 10, -8 - 10, -12 - 10, -14 - 10, all cut to 0 by Relu, + 0.25.
        let input = (1...9).map(Float.init) + (1...9).map { -Float($0) }
        let outputs = try session.run(input, shape: [2, 1, 3, 3])
        XCTAssertEqual(outputs[0].shape, [2, 2, 2, 2])
        XCTAssertEqual(outputs[0].values, [1, 1, 1, 1, 0.25, 0.25, 2.25, 4.25, 5, 5, 5, 5, 0.25, 0.25, 0.25, 0.25])
        XCTAssertEqual(Array(outputs[1].values[8...]), [4, 4, 4, 4, -16, -18, -22, -24])
    }

    func testRepeatedRunsAndSeveralThreadsAgree() throws {
        let one = try ONNXRuntimeSession(modelPath: fixturePath(), threads: 1)
        let two = try ONNXRuntimeSession(modelPath: fixturePath(), threads: 2, library: one.library)
        let input = (1...9).map(Float.init)
        let first = try one.run(input, shape: [1, 1, 3, 3])
        for _ in 0..<3 {
            XCTAssertEqual(try one.run(input, shape: [1, 1, 3, 3]), first)
            XCTAssertEqual(try two.run(input, shape: [1, 1, 3, 3]), first)
        }
    }

    func testInputThatDoesNotFitItsShapeIsRefused() throws {
        let path = try fixturePath()
        let session = try ONNXRuntimeSession(modelPath: path)
        XCTAssertThrowsError(try session.run([1, 2, 3], shape: [1, 1, 3, 3])) { error in
            guard case .runFailed(let modelPath, let message) = error as? ONNXRuntimeError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(modelPath, path)
            XCTAssertTrue(message.contains("9 values but 3 were given"), message)
        }
        // A shape ONNX Runtime rejects (wrong rank for the model) comes back with its message.
        XCTAssertThrowsError(try session.run((1...9).map(Float.init), shape: [9])) { error in
            guard case .runFailed(_, let message) = error as? ONNXRuntimeError else { return XCTFail("unexpected \(error)") }
            XCTAssertTrue(message.hasPrefix("inference failed: "), message)
            XCTAssertGreaterThan(message.count, "inference failed: ".count)
        }
    }

    func testMissingModelNamesThePath() throws {
        let path = try temporaryDirectory().appendingPathComponent("missing.onnx").path
        XCTAssertThrowsError(try ONNXRuntimeSession(modelPath: path)) { error in
            guard case .modelNotLoaded(let errorPath, let message) = error as? ONNXRuntimeError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(errorPath, path)
            XCTAssertTrue(message.hasPrefix("cannot load the model \(path): "), message)
            XCTAssertTrue("\(error)".contains(path))
        }
    }

    func testCorruptModelNamesThePath() throws {
        let url = try temporaryDirectory().appendingPathComponent("corrupt.onnx")
        try Data("this is not a protobuf model".utf8).write(to: url)
        XCTAssertThrowsError(try ONNXRuntimeSession(modelPath: url.path)) { error in
            guard case .modelNotLoaded(let errorPath, let message) = error as? ONNXRuntimeError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(errorPath, url.path)
            XCTAssertTrue(message.hasPrefix("cannot load the model \(url.path): "), message)
        }
    }

    func testTruncatedModelNamesThePath() throws {
        let model = try Data(contentsOf: URL(fileURLWithPath: fixturePath()))
        let url = try temporaryDirectory().appendingPathComponent("truncated.onnx")
        try model.prefix(model.count / 2).write(to: url)
        XCTAssertThrowsError(try ONNXRuntimeSession(modelPath: url.path)) { error in
            XCTAssertTrue("\(error)".contains(url.path), "\(error)")
        }
    }

    func testWrongLibraryPathGivesTheLibraryError() {
        let path = "/nonexistent/edgenas/libonnxruntime.so"
        XCTAssertThrowsError(try ONNXRuntimeLibrary(path: path)) { error in
            guard case .libraryNotLoaded(let attempts) = error as? ONNXRuntimeError else {
                return XCTFail("unexpected \(error)")
            }
            // An explicit path is the only one tried.
            XCTAssertEqual(attempts.map(\.candidate), [path])
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), text)
            XCTAssertTrue(text.contains("scripts/install.sh --deps"), text)
            XCTAssertTrue(text.contains(ONNXRuntimeLibrary.environmentVariable), text)
        }
    }

    func testLibraryThatIsNotONNXRuntimeIsRejected() throws {
        // libdl is a real shared library without OrtGetApiBase.
        XCTAssertThrowsError(try ONNXRuntimeLibrary(path: "libdl.so.2")) { error in
            guard case .libraryNotLoaded(let attempts) = error as? ONNXRuntimeError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(attempts.map(\.reason), ["libdl.so.2 is not ONNX Runtime: it has no OrtGetApiBase symbol"])
        }
    }

    func testEnvironmentVariableIsTheOnlyCandidateWhenSet() {
        let environment = [ONNXRuntimeLibrary.environmentVariable: "/nonexistent/from-env/libonnxruntime.so"]
        XCTAssertThrowsError(try ONNXRuntimeLibrary(environment: environment)) { error in
            guard case .libraryNotLoaded(let attempts) = error as? ONNXRuntimeError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(attempts.map(\.source), [ONNXRuntimeLibrary.environmentVariable])
            XCTAssertEqual(attempts.map(\.candidate), ["/nonexistent/from-env/libonnxruntime.so"])
        }
    }

    func testEnvironmentVariableSelectsTheLibrary() throws {
        let installed = try ONNXRuntimeLibrary()
        let library = try ONNXRuntimeLibrary(environment: [ONNXRuntimeLibrary.environmentVariable: installed.path])
        XCTAssertEqual(library.path, installed.path)
        XCTAssertEqual(library.version, installed.version)
    }

    func testThreadCountMustBePositive() throws {
        let path = try fixturePath()
        XCTAssertThrowsError(try ONNXRuntimeSession(modelPath: path, threads: 0)) { error in
            XCTAssertEqual(error as? ONNXRuntimeError, .invalidThreadCount(0))
        }
    }
}
