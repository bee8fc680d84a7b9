import CONNXRuntime
import Foundation

/// One output tensor of a run.
public struct ONNXRuntimeOutput: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    /// Row-major values, `shape.reduce(1, *)` of them.
    public let values: [Float]
}

/// An exported .onnx model loaded into ONNX Runtime for batch-1 latency measurement.
///
/// Sessions use `threads` threads inside operators, one between them, sequential execution,
/// all graph optimisations, and thread pools that sleep rather than spin when idle (spinning
/// workers collapse on shared cores while another process is busy).
///
/// With a `profilingPrefix`, ONNX Runtime's profiler times every node of every run;
/// `endProfiling()` writes the profile and `ONNXRuntimeProfile` reads it. The profiler adds work
/// around every node (timestamps, memory statistics), so use profiled runs for how a run's time
/// divides over the nodes, and unprofiled sessions for the latency itself.
///
/// `@unchecked Sendable`: each `run` allocates its own tensors, ONNX Runtime allows concurrent
/// Run calls on one session, and the only state that changes after init, the end of profiling,
/// is behind `profilingLock`.
public final class ONNXRuntimeSession: @unchecked Sendable {
    public let modelPath: String
    public let threads: Int
    /// Where the profile goes: "<prefix>_<date>_<time>.json"; nil when the session is not profiled.
    public let profilingPrefix: String?
    public let inputNames: [String]
    public let outputNames: [String]
    /// Declared input shapes; -1 marks a symbolic dimension (such as the batch).
    public let inputShapes: [[Int]]
    /// Declared output shapes; -1 marks a symbolic dimension.
    public let outputShapes: [[Int]]

    /// Kept so the runtime outlives the session, as ONNX Runtime requires.
    public let library: ONNXRuntimeLibrary
    private let handle: OpaquePointer
    private let profilingLock = NSLock()

    /// Loads the model at `modelPath`. `library` defaults to `ONNXRuntimeLibrary()`, which
    /// searches the usual places.
    ///
    /// `profilingPrefix`: profile every run into "<prefix>_<date>_<time>.json" (a path prefix;
    /// its directory must exist). The timestamp has millisecond resolution, so sessions created
    /// together need distinct prefixes. A profiled session that is released without
    /// `endProfiling()` still leaves its file behind: ONNX Runtime writes it on release.
    public init(modelPath: String, threads: Int = 1, library: ONNXRuntimeLibrary? = nil,
                profilingPrefix: String? = nil) throws {
        guard threads >= 1, let threadCount = Int32(exactly: threads) else {
            throw ONNXRuntimeError.invalidThreadCount(threads)
        }
        let library = try library ?? ONNXRuntimeLibrary()
        guard let handle = ortb_session_create(library.handle, modelPath, threadCount, profilingPrefix) else {
            throw ONNXRuntimeError.modelNotLoaded(path: modelPath, message: String(cString: ortb_last_error()))
        }
        self.modelPath = modelPath
        self.threads = threads
        self.profilingPrefix = profilingPrefix
        self.library = library
        self.handle = handle
        func names(_ kind: ortb_io_kind) -> [String] {
            (0..<ortb_session_count(handle, kind)).map { String(cString: ortb_session_name(handle, kind, $0)) }
        }
        func shapes(_ kind: ortb_io_kind) -> [[Int]] {
            (0..<ortb_session_count(handle, kind)).map { index in
                let rank = ortb_session_rank(handle, kind, index)
                return UnsafeBufferPointer(start: ortb_session_shape(handle, kind, index), count: rank).map { Int($0) }
            }
        }
        inputNames = names(ORTB_INPUT)
        outputNames = names(ORTB_OUTPUT)
        inputShapes = shapes(ORTB_INPUT)
        outputShapes = shapes(ORTB_OUTPUT)
    }

    deinit { ortb_session_free(handle) }

    /// Runs the model on `input` (row-major float32 values with dims `shape`, no -1) fed to its
    /// single input, and returns every output in the model's order.
    public func run(_ input: [Float], shape: [Int]) throws -> [ONNXRuntimeOutput] {
        let dims = shape.map { Int64($0) }
        let result = input.withUnsafeBufferPointer { values in
            dims.withUnsafeBufferPointer { dims in
                ortb_session_run(handle, values.baseAddress, values.count, dims.baseAddress, dims.count)
            }
        }
        guard let outputs = result else {
            throw ONNXRuntimeError.runFailed(modelPath: modelPath, message: String(cString: ortb_last_error()))
        }
        defer { ortb_outputs_free(outputs) }
        return (0..<ortb_outputs_count(outputs)).map { index in
            let rank = ortb_outputs_rank(outputs, index)
            return ONNXRuntimeOutput(
                name: outputNames[index],
                shape: UnsafeBufferPointer(start: ortb_outputs_shape(outputs, index), count: rank).map { Int($0) },
                values: Array(UnsafeBufferPointer(start: ortb_outputs_data(outputs, index),
                                                  count: ortb_outputs_element_count(outputs, index))))
        }
    }
}

extension ONNXRuntimeSession {
    /// Ends profiling and returns the JSON file ONNX Runtime wrote, for `ONNXRuntimeProfile`.
    /// Runs after this are not recorded. Throws `.profilingNotEnabled` for a session created
    /// without `profilingPrefix`, and `.profilingFailed` on a second call (a session is
    /// profiled once) or when the file is not there (ONNX Runtime reports a path even when it
    /// could not write to it, e.g. in a directory that does not exist).
    public func endProfiling() throws -> URL {
        guard let profilingPrefix else { throw ONNXRuntimeError.profilingNotEnabled(modelPath: modelPath) }
        let ended = profilingLock.withLock { ortb_session_end_profiling(handle).map { String(cString: $0) } }
        guard let path = ended else {
            throw ONNXRuntimeError.profilingFailed(modelPath: modelPath, message: String(cString: ortb_last_error()))
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw ONNXRuntimeError.profilingFailed(
                modelPath: modelPath,
                message: "ONNX Runtime reports the profile at '\(path)' but wrote no file there; "
                    + "does the directory of the prefix \(profilingPrefix) exist?")
        }
        return URL(fileURLWithPath: path)
    }
}
