import Foundation
import ONNXRuntime
import XCTest

/// ONNX Runtime's per-node profiling through the bridge, and the reader of its files. Like
/// ONNXRuntimeSessionTests, these need the real libonnxruntime and fail without it.
final class ONNXRuntimeProfileTests: XCTestCase {
    private let image = (1...9).map(Float.init)

    /// A session profiling into a fresh directory, run `runs` times, and its ended profile.
    private func profiledFixture(runs: Int) throws -> (session: ONNXRuntimeSession, file: URL) {
        let prefix = try temporaryDirectory().appendingPathComponent("fixture").path
        let session = try ONNXRuntimeSession(modelPath: fixturePath(), profilingPrefix: prefix)
        XCTAssertEqual(session.profilingPrefix, prefix)
        for _ in 0..<runs { _ = try session.run(image, shape: [1, 1, 3, 3]) }
        return (session, try session.endProfiling())
    }

    func testProfileHasEveryNodeOncePerRun() throws {
        let runs = 3
        let (session, file) = try profiledFixture(runs: runs)
        // The file is where the prefix says: EnableProfiling (slot 14) reached ONNX Runtime with
        // this prefix, and SessionEndProfiling (slot 110) returned the name of what it wrote.
        // A wrong slot of the same signature (SetSessionLogId, SetOptimizedModelFilePath)
        // would not crash, but no such file would exist.
        let prefix = try XCTUnwrap(session.profilingPrefix)
        XCTAssertEqual(file.deletingLastPathComponent().path, URL(fileURLWithPath: prefix).deletingLastPathComponent().path)
        XCTAssertTrue(file.lastPathComponent.hasPrefix("fixture_"), file.path)
        XCTAssertEqual(file.pathExtension, "json")

        let profile = try ONNXRuntimeProfile(contentsOf: file)
        // The model's three nodes are unnamed, so ONNX Runtime reports "<op>_<index>". On x86
        // its NCHWc transformer replaces the Conv with one named after its output tensor "conv"
        // and adds ReorderOutput nodes back to NCHW; elsewhere the Conv stays "Conv_0".
        let modelNodes = profile.nodes.filter { $0.opType != "ReorderOutput" }
        XCTAssertEqual(modelNodes.map(\.opType), ["Conv", "Relu", "Add"])
        XCTAssertEqual(modelNodes.map(\.name).dropFirst(), ["Relu_1", "Add_2"])
        XCTAssertTrue(["conv_nchwc", "Conv_0"].contains(modelNodes[0].name), modelNodes[0].name)
        XCTAssertEqual(Set(profile.nodes.map(\.provider)), ["CPUExecutionProvider"])
        XCTAssertEqual(Set(profile.nodes.map { $0.index != nil }), [true])

        XCTAssertEqual(profile.runDurations.count, runs)
        XCTAssertEqual(profile.executorDurations.count, runs)
        for node in profile.nodes {
            XCTAssertEqual(node.durations.count, runs, node.name)
            XCTAssertTrue(node.durations.allSatisfy { $0 >= 0 }, "\(node)")
            // Whole microseconds: a 2x2 Relu can round down to 0 in one run, not in all.
            XCTAssertGreaterThan(node.durations.reduce(0, +), 0, node.name)
        }
        // Each run encloses its execution, which encloses its nodes (one after another).
        for run in 0..<runs {
            let nodes = profile.nodes.map { $0.durations[run] }.reduce(0, +)
            XCTAssertGreaterThanOrEqual(profile.executorDurations[run], nodes, "run \(run)")
            XCTAssertGreaterThanOrEqual(profile.runDurations[run], profile.executorDurations[run], "run \(run)")
        }
    }

    func testProfilingDoesNotChangeTheResults() throws {
        let prefix = try temporaryDirectory().appendingPathComponent("results").path
        let plain = try ONNXRuntimeSession(modelPath: fixturePath())
        let profiled = try ONNXRuntimeSession(modelPath: fixturePath(), library: plain.library, profilingPrefix: prefix)
        XCTAssertEqual(try profiled.run(image, shape: [1, 1, 3, 3]), try plain.run(image, shape: [1, 1, 3, 3]))
        XCTAssertNil(plain.profilingPrefix)
    }

    func testRunsAfterTheEndAreNotRecorded() throws {
        let (session, file) = try profiledFixture(runs: 2)
        _ = try session.run(image, shape: [1, 1, 3, 3])
        XCTAssertEqual(try ONNXRuntimeProfile(contentsOf: file).runDurations.count, 2)
    }

    func testEndingProfilingOfAnUnprofiledSessionIsAnError() throws {
        let path = try fixturePath()
        let session = try ONNXRuntimeSession(modelPath: path)
        XCTAssertThrowsError(try session.endProfiling()) { error in
            XCTAssertEqual(error as? ONNXRuntimeError, .profilingNotEnabled(modelPath: path))
            XCTAssertTrue("\(error)".contains("profilingPrefix"), "\(error)")
        }
    }

    func testProfilingEndsOnce() throws {
        let (session, file) = try profiledFixture(runs: 1)
        XCTAssertThrowsError(try session.endProfiling()) { error in
            guard case .profilingFailed(let modelPath, let message) = error as? ONNXRuntimeError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(modelPath, session.modelPath)
            XCTAssertTrue(message.contains("already ended"), message)
            XCTAssertTrue(message.contains(file.path), message)
        }
    }

    func testPrefixInAMissingDirectoryIsReportedAtTheEnd() throws {
        // ONNX Runtime accepts the prefix and names a file it could not create.
        let prefix = try temporaryDirectory().appendingPathComponent("missing/fixture").path
        let session = try ONNXRuntimeSession(modelPath: fixturePath(), profilingPrefix: prefix)
        _ = try session.run(image, shape: [1, 1, 3, 3])
        XCTAssertThrowsError(try session.endProfiling()) { error in
            guard case .profilingFailed(_, let message) = error as? ONNXRuntimeError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertTrue(message.contains("wrote no file"), message)
            XCTAssertTrue(message.contains(prefix), message)
        }
    }

    // MARK: the reader on hand-written files

    private func write(_ json: String) throws -> URL {
        let url = try temporaryDirectory().appendingPathComponent("profile.json")
        try Data(json.utf8).write(to: url)
        return url
    }

    func testNodesWithOneNameAreKeptApartByIndexAndOtherEventsIgnored() throws {
        let url = try write("""
            [{"cat": "Session", "name": "session_initialization", "dur": 900, "args": {}},
             {"cat": "Node", "name": "block_fence_before", "dur": 1, "args": {"op_name": "Conv"}},
             {"cat": "Node", "name": "block_kernel_time", "dur": 40, "args": {"op_name": "Conv", "node_index": "0"}},
             {"cat": "Node", "name": "block_kernel_time", "dur": 7, "args": {"op_name": "Relu", "node_index": "1"}},
             {"cat": "Session", "name": "SequentialExecutor::Execute", "dur": 50, "args": {}},
             {"cat": "Session", "name": "model_run", "dur": 55, "args": {}},
             {"cat": "Node", "name": "block_kernel_time", "dur": 30.5, "args": {"op_name": "Conv", "node_index": "0"}},
             {"cat": "Node", "name": "block_kernel_time", "dur": 6, "args": {"op_name": "Relu", "node_index": "1"}},
             {"cat": "Session", "name": "SequentialExecutor::Execute", "dur": 38, "args": {}},
             {"cat": "Session", "name": "model_run", "dur": 41, "args": {}}]
            """)
        let profile = try ONNXRuntimeProfile(contentsOf: url)
        XCTAssertEqual(profile.nodes.map(\.name), ["block", "block"])
        XCTAssertEqual(profile.nodes.map(\.opType), ["Conv", "Relu"])
        XCTAssertEqual(profile.nodes.map(\.index), [0, 1])
        XCTAssertEqual(profile.nodes.map(\.provider), [nil, nil])
        XCTAssertEqual(profile.nodes.map(\.durations), [[40, 30.5], [7, 6]])
        XCTAssertEqual(profile.executorDurations, [50, 38])
        XCTAssertEqual(profile.runDurations, [55, 41])
    }

    func testFilesThatAreNotProfilesAreRejected() throws {
        for (json, expected) in [
            ("not json", "not JSON: "),
            (#"{"cat": "Node"}"#, "expected a JSON array of event objects"),
            (#"[{"cat": "Node", "name": "a_kernel_time", "args": {"op_name": "Conv"}}]"#, "event 0 (a_kernel_time) has no numeric dur"),
            (#"[{"cat": "Node", "name": "a_kernel_time", "dur": 3}]"#, "event 0 (a_kernel_time) has no args.op_name"),
        ] {
            let url = try write(json)
            XCTAssertThrowsError(try ONNXRuntimeProfile(contentsOf: url), json) { error in
                guard case .invalidProfile(let path, let message) = error as? ONNXRuntimeError else {
                    return XCTFail("unexpected \(error)")
                }
                XCTAssertEqual(path, url.path)
                XCTAssertTrue(message.contains(expected), "\(json): \(message)")
            }
        }
    }

    func testMissingProfileFileIsRejected() throws {
        let url = try temporaryDirectory().appendingPathComponent("absent.json")
        XCTAssertThrowsError(try ONNXRuntimeProfile(contentsOf: url)) { error in
            guard case .invalidProfile(let path, let message) = error as? ONNXRuntimeError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(path, url.path)
            XCTAssertTrue(message.hasPrefix("cannot read it: "), message)
        }
    }
}
