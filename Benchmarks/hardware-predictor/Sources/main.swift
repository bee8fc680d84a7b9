// Latency predictor accuracy on held-out architectures of the detector head space.
//
// Measures `--count` architectures drawn from the head space (kernel 3/5, groups 1/2/4/8,
// channels 24...96, width 220...320) with the `--latency` backend (default `local`, eager
// libtorch FP32; e.g. `--latency 'onnxruntime int8'` for the deployment runtime), one thread, in
// `--rounds` rounds of shuffled order. Two latency figures are kept per architecture, both
// the smallest over the rounds (another process on shared cores only ever adds time): the
// median of a round's timed runs, and the minimum (the fastest run, the figure least moved
// by other processes). For each, the kernel-level predictor is fit on the first `--train`
// architectures and judged on the rest: share within +-10 %, RMSE, mean and largest relative
// error; next to it a MACs-only linear fit as the naive peer, and the repeatability of the
// measurement itself (each round's value against the kept one), which bounds what any
// predictor can reach.
//
// Run (see Benchmarks/hardware-predictor/README.md):
//   OMP_WAIT_POLICY=PASSIVE swift run -c release edgenas-bench-hardware-predictor --output /tmp/predictor-bench
import Estimation
import Foundation
import Randomness
import Hardware
import LatencyBackends
import Vision

struct Options {
    var count = 120
    var train = 80
    var rounds = 3
    var seed: UInt64 = 1
    var threads = 1
    var latency = LatencyBackendSpec.fp32
    var output = URL(fileURLWithPath: "predictor-bench")

    init(_ arguments: [String]) throws {
        var iterator = arguments.makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { throw BenchError("\(flag) needs a value") }
            switch flag {
            case "--count": count = try Self.int(flag, value)
            case "--train": train = try Self.int(flag, value)
            case "--rounds": rounds = try Self.int(flag, value)
            case "--seed": seed = UInt64(try Self.int(flag, value))
            case "--threads": threads = try Self.int(flag, value)
            case "--output": output = URL(fileURLWithPath: value)
            case "--latency": latency = try LatencyBackendSpec(parsing: value)
            default: throw BenchError("unknown option \(flag); expected --count, --train, --rounds, --seed, --threads, --latency, --output")
            }
        }
        guard train >= 2, train < count, rounds >= 1 else { throw BenchError("expected 2 <= --train < --count and --rounds >= 1") }
    }

    static func int(_ flag: String, _ value: String) throws -> Int {
        guard let number = Int(value), number >= 0 else { throw BenchError("\(flag) is '\(value)'; expected a count") }
        return number
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One architecture's per-round figures.
struct MeasuredArchitecture: Codable {
    var architecture: String
    var roundMedians: [Double] = []
    var roundMinimums: [Double] = []
}

/// Accuracy figures for one latency statistic.
struct StatisticReport: Codable {
    var statistic: String
    var kernelPredictor: PredictionAccuracy
    var macsOnlyLinear: PredictionAccuracy
    /// Every round's value against its architecture's kept value: the measurement's own spread.
    var measurementRepeatability: PredictionAccuracy
    var latencyRangeMilliseconds: [Double]
}

struct Report: Codable {
    var backend: String
    var threads: Int
    var rounds: Int
    var trainCount: Int
    var testCount: Int
    var statistics: [StatisticReport]
    var measureSeconds: Double
}

func run() throws {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    try FileManager.default.createDirectory(at: options.output, withIntermediateDirectories: true)
    let architectures = try DetectorHeadSpace.seed.sample(options.count, seed: options.seed)
    let backend = try options.latency.makeBackend(LatencyBackendSettings(threads: options.threads, seed: options.seed))
    var measured = architectures.map { MeasuredArchitecture(architecture: $0.description) }
    var generator = SplitMix64(seed: options.seed ^ 0x5EED)
    let start = ContinuousClock.now
    for round in 1...options.rounds {
        for index in generator.permutation(architectures.count) {
            let measurement = try backend.measure(architecture: architectures[index])
            measured[index].roundMedians.append(measurement.median)
            measured[index].roundMinimums.append(measurement.minimum)
        }
        FileHandle.standardError.write(Data("round \(round)/\(options.rounds) done after \(ContinuousClock.now - start)\n".utf8))
    }
    let measureSeconds = Double((ContinuousClock.now - start).components.seconds)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(measured).write(to: options.output.appendingPathComponent("measurements.json"))

    var reports: [StatisticReport] = []
    for (statistic, values) in [("median", measured.map(\.roundMedians)), ("minimum", measured.map(\.roundMinimums))] {
        let rows = zip(architectures, values).map { ArchitectureLatency(architecture: $0, milliseconds: $1.min()!) }
        let train = Array(rows[..<options.train]), test = Array(rows[options.train...])
        let predictor = try LatencyPredictor.fit(train, backend: backend.name, threads: options.threads)
        try predictor.save(to: options.output.appendingPathComponent("predictor-\(statistic).json"))

        var naive = OrdinaryLeastSquares()
        let macs = { (row: ArchitectureLatency) in [Double(try DetectorGraph(row.architecture).multiplyAccumulates) / 1e6] }
        try naive.fit(features: train.map(macs), targets: train.map(\.milliseconds))
        let naivePredictions = try naive.predict(test.map(macs))
        let keptPerRound = zip(rows, values).flatMap { row, rounds in rounds.map { _ in row.milliseconds } }
        reports.append(StatisticReport(
            statistic: statistic, kernelPredictor: try predictor.accuracy(on: test),
            macsOnlyLinear: PredictionAccuracy(predicted: naivePredictions, measured: test.map(\.milliseconds)),
            measurementRepeatability: PredictionAccuracy(predicted: values.flatMap { $0 }, measured: keptPerRound),
            latencyRangeMilliseconds: [rows.map(\.milliseconds).min()!, rows.map(\.milliseconds).max()!]))
    }
    let report = Report(backend: backend.name, threads: options.threads, rounds: options.rounds, trainCount: options.train,
                        testCount: options.count - options.train, statistics: reports, measureSeconds: measureSeconds)
    try encoder.encode(report).write(to: options.output.appendingPathComponent("results.json"))

    func line(_ name: String, _ accuracy: PredictionAccuracy) -> String {
        String(format: "| %@ | %d | %.1f %% | %.3f ms | %.1f %% | %.1f %% |", name, accuracy.count, accuracy.withinTenPercent * 100,
               accuracy.rmse, accuracy.meanAbsolutePercentageError * 100, accuracy.maximumRelativeError * 100)
    }
    print("backend \(backend.name), \(options.threads) thread(s), \(options.rounds) rounds, train \(report.trainCount), "
          + "held out \(report.testCount), measuring took \(Int(measureSeconds)) s")
    print("| statistic: model | rows | within +-10 % | RMSE | mean rel. error | max rel. error |")
    print("|---|---|---|---|---|---|")
    for entry in reports {
        print(line("\(entry.statistic): kernel-level predictor (held out)", entry.kernelPredictor))
        print(line("\(entry.statistic): MACs-only linear (held out)", entry.macsOnlyLinear))
        print(line("\(entry.statistic): each round vs kept value (all)", entry.measurementRepeatability))
        print(String(format: "| %@: latency range | | %.2f...%.2f ms | | | |", entry.statistic,
                     entry.latencyRangeMilliseconds[0], entry.latencyRangeMilliseconds[1]))
    }
}

do {
    try run()
} catch {
    FileHandle.standardError.write(Data("edgenas-bench-hardware-predictor: \(error)\n".utf8))
    exit(1)
}
