// NAS-Bench-201 benchmark of the Estimation predictors and rank statistics.
//
//   swift build -c release --product edgenas-bench-estimation
//   .build/release/edgenas-bench-estimation [--data ../shared/data/nb201] [--seeds 20] [--train 40] [--out bench-out]
//
// 1. Each predictor is trained on `--train` random architectures (6 edges x 5 ops one-hot) and
//    scored by Kendall tau against CIFAR-10 test accuracy on all remaining architectures; mean and
//    sample std over `--seeds` seeds.
// 2. Kendall tau and Spearman rho of each zero-cost proxy in zero_cost.csv against val_accuracy and
//    against archs.csv test accuracy (NASLib's -1e8 failure value and -inf treated as missing).
// 3. The strategy rank table (tau with bootstrap CI) of the CIFAR-10 proxies.
// Results go to stdout (markdown) and to CSV files in --out, which
// Benchmarks/estimation/zero_cost_scipy.py checks against scipy.
import Estimation
import Foundation
import Randomness

struct Options {
    var data = "../shared/data/nb201"
    var seeds = 20
    var train = 40
    var out = "bench-out"

    init(_ arguments: [String]) throws {
        var i = 1
        while i < arguments.count {
            let flag = arguments[i]
            guard i + 1 < arguments.count else { throw BenchError.usage("\(flag) needs a value") }
            let value = arguments[i + 1]
            switch flag {
            case "--data": data = value
            case "--out": out = value
            case "--seeds": guard let v = Int(value), v > 0 else { throw BenchError.usage("--seeds \(value): expected a positive integer") }; seeds = v
            case "--train": guard let v = Int(value), v > 1 else { throw BenchError.usage("--train \(value): expected an integer > 1") }; train = v
            default: throw BenchError.usage("unknown option \(flag)")
            }
            i += 2
        }
    }
}

enum BenchError: Error, CustomStringConvertible {
    case usage(String)
    case malformed(file: String, line: Int, detail: String)
    var description: String {
        switch self {
        case .usage(let s): "usage: edgenas-bench-estimation [--data DIR] [--seeds N] [--train N] [--out DIR]: \(s)"
        case .malformed(let f, let l, let d): "\(f):\(l): \(d)"
        }
    }
}

/// Minimal reader for the NB201 CSVs (no quoted fields, per the data README).
func readCSV(_ path: String) throws -> (header: [String], rows: [[String]]) {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    guard !lines.isEmpty else { throw BenchError.malformed(file: path, line: 1, detail: "empty file") }
    let header = lines.removeFirst()
    for (k, row) in lines.enumerated() where row.count != header.count {
        throw BenchError.malformed(file: path, line: k + 2, detail: "\(row.count) fields; expected \(header.count)")
    }
    return (header, lines)
}

func column(_ name: String, _ header: [String], file: String) throws -> Int {
    guard let i = header.firstIndex(of: name) else { throw BenchError.malformed(file: file, line: 1, detail: "no column \(name)") }
    return i
}

func parseDouble(_ s: String, file: String, line: Int) throws -> Double {
    guard let v = Double(s) else { throw BenchError.malformed(file: file, line: line, detail: "\(s) is not a number") }
    return v
}

let nb201Ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]

/// "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" -> the six ops in NB201 edge order.
func edgeOps(_ arch: String) -> [String] {
    arch.split(separator: "|").filter { $0 != "+" }.map { String($0.split(separator: "~")[0]) }
}

func meanStd(_ v: [Double]) -> (Double, Double) {
    let m = v.reduce(0, +) / Double(v.count)
    guard v.count > 1 else { return (m, 0) }
    return (m, (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)).squareRoot())
}

func f(_ x: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", x) }

func run() throws {
    let options = try Options(CommandLine.arguments)
    try FileManager.default.createDirectory(atPath: options.out, withIntermediateDirectories: true)
    let archsPath = options.data + "/archs.csv"
    let archs = try readCSV(archsPath)
    let archColumn = try column("arch_str", archs.header, file: archsPath)
    let accuracyColumns = try ["cifar10": "cifar10_test_acc", "cifar100": "cifar100_test_acc", "ImageNet16-120": "imagenet16_test_acc"]
        .mapValues { try column($0, archs.header, file: archsPath) }
    let encoding = try ArchitectureEncoding(parameters: (0..<6).map { .categorical(name: "edge\($0)", choices: nb201Ops.map(ArchitectureChoice.string)) })
    let features = try archs.rows.map { row -> [Double] in
        let ops = edgeOps(row[archColumn])
        return try encoding.encode(Dictionary(uniqueKeysWithValues: ops.enumerated().map { ("edge\($0)", ArchitectureChoice.string($1)) }))
    }
    let cifar10 = try archs.rows.enumerated().map { try parseDouble($1[accuracyColumns["cifar10"]!], file: archsPath, line: $0 + 2) }
    let testAccuracy = try accuracyColumns.mapValues { c in try archs.rows.enumerated().map { try parseDouble($1[c], file: archsPath, line: $0 + 2) } }

    // Part 1: predictors.
    let factories: [(String, (UInt64) -> any PerformancePredictor)] = [
        ("bayesian_ridge", { _ in BayesianRidge() }),
        ("ols", { _ in OrdinaryLeastSquares() }),
        ("gp_rbf", { GaussianProcessRegressor(kernel: .rbf, seed: $0) }),
        ("gp_matern52", { GaussianProcessRegressor(kernel: .matern52, seed: $0) }),
        ("random_forest", { RandomForestRegressor(seed: $0) }),
        ("gbdt", { GradientBoostedTrees(rounds: 200, learningRate: 0.1, maxDepth: 4, subsample: 0.8, seed: $0) }),
        ("knn_k5", { _ in KNearestNeighbors(neighbourCount: 5) }),
        ("svr", { _ in SupportVectorRegressor(c: 10, epsilon: 0.01) }),
        ("mlp", { MultilayerPerceptron(hiddenLayers: [64], epochs: 500, batchSize: 8, learningRate: 3e-3, weightDecay: 1e-2, seed: $0) }),
    ]
    print("## Predictors on NAS-Bench-201 CIFAR-10: \(options.train) training archs, Kendall tau on the other \(features.count - options.train), \(options.seeds) seeds\n")
    print("| predictor | Kendall tau mean | std | Spearman rho mean | fit+predict ms (mean) |")
    print("|---|---|---|---|---|")
    var csv = "predictor,seed,kendall_tau,spearman_rho,seconds\n"
    let clock = ContinuousClock()
    for (name, make) in factories {
        var taus: [Double] = [], rhos: [Double] = [], seconds: [Double] = []
        for seed in 0..<options.seeds {
            var rng = SplitMix64(seed: UInt64(seed))
            let order = rng.permutation(features.count)
            let trainIdx = Array(order.prefix(options.train)), testIdx = Array(order.dropFirst(options.train))
            var model = make(UInt64(seed))
            let start = clock.now
            try model.fit(features: trainIdx.map { features[$0] }, targets: trainIdx.map { cifar10[$0] })
            let predicted = try model.predict(testIdx.map { features[$0] })
            let elapsed = clock.now - start
            let truth = testIdx.map { cifar10[$0] }
            let tau = try RankStatistics.kendallTau(predicted, truth), rho = try RankStatistics.spearmanRho(predicted, truth)
            let s = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            taus.append(tau); rhos.append(rho); seconds.append(s)
            csv += "\(name),\(seed),\(tau),\(rho),\(s)\n"
        }
        let (mt, st) = meanStd(taus)
        print("| \(name) | \(f(mt)) | \(f(st)) | \(f(meanStd(rhos).0)) | \(f(meanStd(seconds).0 * 1000, 1)) |")
    }
    try csv.write(toFile: options.out + "/predictors_nb201.csv", atomically: true, encoding: .utf8)

    // Part 2: zero-cost proxies.
    let zcPath = options.data + "/zero_cost.csv"
    let zc = try readCSV(zcPath)
    let indexColumn = try column("index", zc.header, file: zcPath), datasetColumn = try column("dataset", zc.header, file: zcPath)
    let valColumn = try column("val_accuracy", zc.header, file: zcPath)
    let proxies = ["epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params", "plain", "snip", "synflow"]
    var zcCSV = "dataset,proxy,target,n,kendall_tau,spearman_rho\n"
    print("\n## Zero-cost proxies (NASLib scores, ~725 archs per dataset): Kendall tau / Spearman rho\n")
    print("| dataset | proxy | n | tau vs val | rho vs val | tau vs test | rho vs test |")
    print("|---|---|---|---|---|---|---|")
    for dataset in ["cifar10", "cifar100", "ImageNet16-120"] {
        let rows = zc.rows.enumerated().filter { $0.element[datasetColumn] == dataset }
        let val = try rows.map { try parseDouble($0.element[valColumn], file: zcPath, line: $0.offset + 2) }
        let test = try rows.map { r -> Double in
            guard let i = Int(r.element[indexColumn]), i >= 0, i < cifar10.count else {
                throw BenchError.malformed(file: zcPath, line: r.offset + 2, detail: "index \(r.element[indexColumn]) not in archs.csv")
            }
            return testAccuracy[dataset]![i]
        }
        for proxy in proxies {
            let c = try column(proxy, zc.header, file: zcPath)
            let scores = try rows.map { try parseDouble($0.element[c], file: zcPath, line: $0.offset + 2) }
            var cells: [String] = []
            var n = 0
            for (targetName, target) in [("val_accuracy", val), ("test_accuracy", test)] {
                let kept = RankStatistics.dropMissing(scores, target, sentinels: [-1e8])
                n = kept.x.count
                let tau = try RankStatistics.kendallTau(kept.x, kept.y), rho = try RankStatistics.spearmanRho(kept.x, kept.y)
                zcCSV += "\(dataset),\(proxy),\(targetName),\(n),\(tau),\(rho)\n"
                cells += [f(tau), f(rho)]
            }
            print("| \(dataset) | \(proxy) | \(n) | \(cells.joined(separator: " | ")) |")
        }
    }
    try zcCSV.write(toFile: options.out + "/zero_cost_correlations.csv", atomically: true, encoding: .utf8)

    // Part 3: the selection core on the CIFAR-10 proxies. zero_cost.csv carries no timings, so every
    // cost is 0 and the table shows the ordering and the bootstrap uncertainty only.
    let cifarRows = zc.rows.enumerated().filter { $0.element[datasetColumn] == "cifar10" }
    let cifarTruth = try cifarRows.map { r -> Double in
        guard let i = Int(r.element[indexColumn]), i >= 0, i < cifar10.count else {
            throw BenchError.malformed(file: zcPath, line: r.offset + 2, detail: "index \(r.element[indexColumn]) not in archs.csv")
        }
        return cifar10[i]
    }
    let strategies = try proxies.map { proxy -> StrategyScores in
        let c = try column(proxy, zc.header, file: zcPath)
        // The -1e8 failure value becomes NaN so the table drops it like any failed evaluation.
        let scores = try cifarRows.map { r -> Double in
            let v = try parseDouble(r.element[c], file: zcPath, line: r.offset + 2)
            return v == -1e8 ? .nan : v
        }
        return StrategyScores(name: proxy, scores: scores, secondsPerArchitecture: 0)
    }
    let table = try StrategyRankTable(trueScores: cifarTruth, strategies: strategies, resamples: 1000, seed: 0)
    try table.csv.write(toFile: options.out + "/cifar10_proxy_rank_table.csv", atomically: true, encoding: .utf8)
    print("\n## Rank table of the CIFAR-10 proxies against test accuracy (95% percentile bootstrap, 1000 resamples, seed 0)\n")
    print("| rank | proxy | n | Kendall tau | 95% CI | Spearman rho |")
    print("|---|---|---|---|---|---|")
    for (k, row) in table.rows.enumerated() {
        print("| \(k + 1) | \(row.name) | \(row.architectures) | \(f(row.kendallTau)) | [\(f(row.kendallTauInterval.lower)), \(f(row.kendallTauInterval.upper))] | \(f(row.spearmanRho)) |")
    }
    print("\nCSV written to \(options.out)/predictors_nb201.csv, zero_cost_correlations.csv and cifar10_proxy_rank_table.csv")
}

do {
    try run()
} catch {
    FileHandle.standardError.write(Data("edgenas-bench-estimation: \(error)\n".utf8))
    exit(1)
}
