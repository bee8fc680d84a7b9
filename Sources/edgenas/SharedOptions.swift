import ArgumentParser
import Foundation

// Options several commands share, declared once so their names, defaults and help agree.

/// `--threads` of commands that train: every core by default.
struct TrainingThreadsOption: ParsableArguments {
    @Option(help: "Intra-op threads for libtorch training (every core by default).")
    var threads = ProcessInfo.processInfo.activeProcessorCount
}

/// `--threads` of commands that measure latency: one by default, as latency is reported
/// single-threaded (an edge CPU core) unless asked otherwise.
struct MeasurementThreadsOption: ParsableArguments {
    @Option(help: "Intra-op threads of the latency measurement.")
    var threads = 1
}

/// `--engine`: libtorch's quantized engine for INT8.
struct QuantizedEngineOption: ParsableArguments {
    @Option(help: "libtorch quantized engine for INT8 (see 'edgenas quantize --list-engines'; default: QNNPACK for accuracy, whose integer arithmetic is what deployed runtimes compute, oneDNN for latency, where available).")
    var engine: String?
}
