import Foundation

/// The node timings of a profile ONNX Runtime wrote (`ONNXRuntimeSession.endProfiling()`): a
/// layer-by-layer latency breakdown of the runs of one session.
///
/// The file is a JSON array of Chrome-trace events. Each run of a sequential session adds one
/// event per executed node, category "Node", named "<node>_kernel_time", with `dur` in whole
/// microseconds and `args` holding `op_name`, `node_index`, `provider` and memory statistics;
/// then "SequentialExecutor::Execute" and "model_run" (category "Session") for the whole run.
/// Events for loading and initialising the session come first and are not kept here. The
/// first run does one-time work inside the kernels (QLinearConv 130 µs, then 17 and 14 µs, in a
/// small QDQ model), so leave warm-up runs out of a per-node profile.
///
/// Node names are those of the graph ONNX Runtime ran, after its optimisations, not those of
/// the .onnx file (seen with ONNX Runtime 1.32 on x86 CPUs at the sessions' ORT_ENABLE_ALL):
/// - an unnamed node is "<op type>_<node index>": the fixture's Relu is "Relu_1";
/// - a fused node disappears into the one it was fused into: Conv + Relu, Conv + Add, and a QDQ
///   group DequantizeLinear (input, weight, bias) -> Conv -> Relu -> QuantizeLinear, which
///   becomes a single QLinearConv; only the Q/DQ nodes at the graph's inputs and outputs remain;
/// - a node the optimiser rewrites or creates gets a generated name: the NCHWc transformer's
///   Conv is named after its output tensor, "<output>_nchwc" (the fixture's Conv, output
///   "conv", is "conv_nchwc"; a Conv fused with the Relu producing "r" is "r_nchwc"); the
///   QLinearConv moved to NHWC keeps the Conv's name with a suffix, "stem_conv_token_1"; and
///   the layout conversions they need appear as their own nodes, "ReorderOutput",
///   "ReorderOutput_token_3", "Transpose", "Transpose_token_0".
/// So relate a profile to the model by op type, order and output tensors, not by node name.
public struct ONNXRuntimeProfile: Equatable, Sendable {
    /// One node of the executed graph and its time in each run.
    public struct Node: Equatable, Sendable {
        /// The name ONNX Runtime reports (see above), without "_kernel_time".
        public let name: String
        /// The operator (`args.op_name`), e.g. "Conv", "QLinearConv", "ReorderOutput".
        public let opType: String
        /// Its index in ONNX Runtime's graph (`args.node_index`), nil when the file has none.
        public let index: Int?
        /// The execution provider that ran it, e.g. "CPUExecutionProvider".
        public let provider: String?
        /// Microseconds of its kernel in each run, in run order.
        public internal(set) var durations: [Double]
    }

    /// The executed nodes in the order they first ran.
    public let nodes: [Node]
    /// Microseconds of each whole run ("model_run" events): the nodes, plus feeding the inputs
    /// and fetching the outputs.
    public let runDurations: [Double]
    /// Microseconds of each run's node execution ("SequentialExecutor::Execute" events).
    public let executorDurations: [Double]

    /// Reads the profile at `url`; throws `ONNXRuntimeError.invalidProfile` when it cannot be
    /// read or a node or run event lacks what is kept here.
    public init(contentsOf url: URL) throws {
        func invalid(_ message: String) -> ONNXRuntimeError { .invalidProfile(path: url.path, message: message) }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw invalid("cannot read it: \(error.localizedDescription)")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw invalid("not JSON: \(error.localizedDescription)")
        }
        guard let events = object as? [[String: Any]] else { throw invalid("expected a JSON array of event objects") }

        // Keyed by name and index: node names need not be unique in an .onnx file.
        struct Key: Hashable {
            let name: String
            let index: Int?
        }
        var nodes: [Node] = []
        var positions: [Key: Int] = [:]
        var runDurations: [Double] = []
        var executorDurations: [Double] = []
        let kernelSuffix = "_kernel_time"
        for (position, event) in events.enumerated() {
            guard let category = event["cat"] as? String, let name = event["name"] as? String else { continue }
            let isKernel = category == "Node" && name.hasSuffix(kernelSuffix)
            let isRun = category == "Session" && (name == "model_run" || name == "SequentialExecutor::Execute")
            guard isKernel || isRun else { continue }
            guard let duration = (event["dur"] as? NSNumber)?.doubleValue else {
                throw invalid("event \(position) (\(name)) has no numeric dur")
            }
            if isRun {
                if name == "model_run" { runDurations.append(duration) } else { executorDurations.append(duration) }
                continue
            }
            let args = event["args"] as? [String: Any] ?? [:]
            guard let opType = args["op_name"] as? String else {
                throw invalid("event \(position) (\(name)) has no args.op_name")
            }
            // ONNX Runtime writes the index as a string.
            let key = Key(name: String(name.dropLast(kernelSuffix.count)),
                          index: (args["node_index"] as? String).flatMap { Int($0) })
            if let existing = positions[key] {
                nodes[existing].durations.append(duration)
            } else {
                positions[key] = nodes.count
                nodes.append(Node(name: key.name, opType: opType, index: key.index,
                                  provider: args["provider"] as? String, durations: [duration]))
            }
        }
        self.nodes = nodes
        self.runDurations = runDurations
        self.executorDurations = executorDurations
    }
}
