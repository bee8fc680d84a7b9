// Training-step time through EdgeNAS's Torch layer, of the ShuffleNetV2 0.5x backbone
// (`--model backbone`) or of the whole baseline detector (`--model detector`).
// Peer: Benchmarks/torch/bench_torch.py does the same in PyTorch; Benchmarks/torch/run.sh runs both.
//
// Usage: edgenas-bench-torch [--model backbone|detector] [--batch 16] [--size 320] [--threads 2] [--warmup 2] [--steps 5]
// Prints one line per measured step and a final line with "median_cpu_ms=<value> median_ms=<value>"
// (process CPU time and wall time per step).
import Foundation
import Torch
import Vision

struct Options {
    enum Model: String { case backbone, detector }
    var model = Model.backbone
    var batch = 16
    var size = 320
    var threads = 2
    var warmup = 2
    var steps = 5

    init(arguments: [String]) throws {
        var iterator = arguments.makeIterator()
        while let flag = iterator.next() {
            if flag == "--model" {
                guard let text = iterator.next(), let model = Model(rawValue: text) else {
                    throw TorchError(message: "option --model needs backbone or detector")
                }
                self.model = model
                continue
            }
            guard let text = iterator.next(), let value = Int(text), value >= 0 else {
                throw TorchError(message: "option \(flag) needs a non-negative integer value")
            }
            switch flag {
            case "--batch": batch = value
            case "--size": size = value
            case "--threads": threads = value
            case "--warmup": warmup = value
            case "--steps": steps = value
            default: throw TorchError(message: "unknown option \(flag)")
            }
        }
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

/// CPU time of the whole process (all threads), which a shared, loaded machine disturbs less than wall time.
func processCPUMilliseconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) * 1e3 + Double(time.tv_nsec) / 1e6
}

func run() throws {
    let options = try Options(arguments: Array(CommandLine.arguments.dropFirst()))
    Torch.setThreadCount(options.threads)
    let generator = try Generator(seed: 0)
    let images = try Tensor.normal([options.batch, 3, options.size, options.size], generator: generator)
    // Both models train with a trivial loss (the mean of what they output, as the Python peer
    // does), so the figure is the network's forward + backward + update, not a loss port.
    let module: any Module
    let loss: () throws -> Tensor
    switch options.model {
    case .backbone:
        let backbone = try ShuffleNetV2Backbone(generator: generator)
        backbone.train()
        module = backbone
        loss = {
            let features = try backbone.features(images)
            return try features.stride8.mean() + features.stride16.mean() + features.stride32.mean()
        }
    case .detector:
        var architecture = DetectorArchitecture.baseline
        architecture.inputWidthPixels = options.size
        let detector = try Detector(architecture)
        // As `Trainer` does: weights and activations channels-last (docs/benchmarks.md).
        try detector.useChannelsLast()
        module = detector
        loss = { try detector.forward(images).mean() }
    }
    let optimizer = try SGD(parameters: module.parameters(), learningRate: 0.01, momentum: 0.9, weightDecay: 1e-4)

    func step() throws {
        try optimizer.zeroGrad()
        try loss().backward()
        try optimizer.step()
    }

    for _ in 0..<options.warmup { try step() }
    var times: [Double] = []
    var cpuTimes: [Double] = []
    for index in 0..<options.steps {
        let start = DispatchTime.now().uptimeNanoseconds
        let cpuStart = processCPUMilliseconds()
        try step()
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let cpuMilliseconds = processCPUMilliseconds() - cpuStart
        times.append(milliseconds)
        cpuTimes.append(cpuMilliseconds)
        print("step \(index) ms=\(String(format: "%.1f", milliseconds)) cpu_ms=\(String(format: "%.1f", cpuMilliseconds))")
    }
    print("model=\(options.model.rawValue) threads=\(Torch.threadCount) omp_wait_policy=\(Torch.ompWaitPolicy ?? "unset")"
        + " median_cpu_ms=\(String(format: "%.1f", median(cpuTimes))) median_ms=\(String(format: "%.1f", median(times)))")
}

Torch.relaunchWithPassiveOpenMPIfNeeded()
do {
    try run()
} catch {
    FileHandle.standardError.write(Data("edgenas-bench-torch: \(error)\n".utf8))
    exit(1)
}
