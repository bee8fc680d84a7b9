// EdgeNAS sampler benchmark: normalised hypervolume on multi-objective problems and the
// sampler's overhead per trial. Run through Benchmarks/search/run.sh, which also runs the
// Optuna side (optuna_bench.py) and compares them.
//
//   swift build -c release --product edgenas-bench-search
//   .build/release/edgenas-bench-search [--quick] [--seeds N] [--out FILE] [--nb201 DIR]
//
// Output: JSON lines, one per (sampler, problem, seed, trials) with "hv_ratio" (the
// hypervolume of the trials so far over the true front's), and one per (sampler, trials)
// with "ms_per_trial" and "cpu_ms_per_trial" (mean wall and CPU time of ask + tell at that
// history size).
import Foundation
import Randomness
import Search

struct Options {
    var quick = false
    var seeds = 10
    var out = "Benchmarks/search/results-edgenas.jsonl"
    var nb201 = "../shared/data/nb201"
    var samplers = ["random", "tpe", "tpe-multivariate", "gp", "nsga2", "auto"]
    var problems = ["zdt1", "zdt2", "zdt3", "zdt6", "dtlz2", "dtlz7", "zdt1-sr", "dtlz2-sr", "nb201-raspi4", "nb201-1080ti_1"]
    var checkpoints = [50, 100, 200]
    var overheadSizes = [100, 500, 1000]
    var skipOverhead = false
    var skipQuality = false
    /// ask + tell rounds timed per overhead figure.
    var repeats = 5

    init(_ arguments: [String]) throws {
        var i = 0
        func value() throws -> String {
            i += 1
            guard i < arguments.count else { throw BenchError.unknown("value for \(arguments[i - 1])") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--quick": quick = true
            case "--seeds": seeds = Int(try value())!
            case "--out": out = try value()
            case "--nb201": nb201 = try value()
            case "--samplers": samplers = try value().split(separator: ",").map(String.init)
            case "--problems": problems = try value().split(separator: ",").map(String.init)
            case "--trials": checkpoints = try value().split(separator: ",").map { Int($0)! }
            case "--overhead": overheadSizes = try value().split(separator: ",").map { Int($0)! }
            case "--no-overhead": skipOverhead = true
            case "--no-quality": skipQuality = true
            case "--repeats": repeats = Int(try value())!
            default: throw BenchError.unknown("option \(arguments[i])")
            }
            i += 1
        }
        if quick {
            seeds = min(seeds, 3)
            problems = problems.filter { ["zdt1", "zdt3", "dtlz2", "zdt1-sr", "nb201-raspi4"].contains($0) }
            checkpoints = [50, 100]
        }
    }
}

func makeSampler(_ name: String, budget: Int) throws -> any Sampler {
    switch name {
    case "random": RandomSampler()
    case "sobol": SobolSampler()
    case "tpe": TPESampler()
    case "tpe-multivariate": TPESampler(multivariate: true)
    case "gp": GPSampler()
    case let variant where variant.hasPrefix("gp:"): try gpVariant(variant)
    case "nsga2": NSGAIISampler(populationSize: 20)
    case "auto": AutoSampler(budget: budget)
    default: throw BenchError.unknown("sampler \(name)")
    }
}

/// A GP with settings changed, for ablations: `gp:candidates=2048:local=10:incumbents=2:moves=16:refit=5:fit=100`
/// (colons, since the sampler list is comma-separated). The name is recorded as given.
func gpVariant(_ name: String) throws -> GPSampler {
    var sampler = GPSampler()
    for setting in name.split(separator: ":").dropFirst() {
        let parts = setting.split(separator: "=")
        guard parts.count == 2, let value = Int(parts[1]) else { throw BenchError.unknown("GP setting \(setting) in \(name)") }
        switch parts[0] {
        case "candidates": sampler.candidates = value
        case "local": sampler.localStarts = value
        case "incumbents": sampler.incumbentStarts = value
        case "moves": sampler.frontMoves = value
        case "refit": sampler.refitInterval = value
        case "fit": sampler.fitIterations = value
        default: throw BenchError.unknown("GP setting \(parts[0]) in \(name)")
        }
    }
    return sampler
}

/// One study of `trials` trials; returns the normalised hypervolume at each checkpoint.
func quality(problem: Problem, sampler: any Sampler, seed: UInt64, checkpoints: [Int]) async throws -> [Int: Double] {
    let study = try await Study(name: "bench", space: problem.space, directions: problem.directions, storage: InMemoryStorage(),
                                sampler: sampler, seed: seed)
    var result: [Int: Double] = [:]
    var done = 0
    for checkpoint in checkpoints.sorted() {
        try await study.optimize(nTrials: checkpoint - done) { trial in Evaluation(values: problem.evaluate(trial.parameters)) }
        done = checkpoint
        let losses = try await study.trials(states: [.complete]).map { problem.losses($0.values!) }
        result[checkpoint] = Pareto.hypervolume(losses, reference: problem.reference) / problem.trueHypervolume
    }
    return result
}

/// Seconds of CPU used by this process so far (all threads): unlike wall time, not
/// inflated when other programs compete for the cores.
func processCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
}

/// Mean ask + tell time (wall and CPU, ms) with `history` random trials already in the study.
func overhead(problem: Problem, sampler: any Sampler, history: Int, repeats: Int) async throws -> (wall: Double, cpu: Double) {
    let storage = InMemoryStorage()
    let study = try await Study(name: "bench", space: problem.space, directions: problem.directions, storage: storage,
                                sampler: sampler, seed: 1)
    var rng = SplitMix64(seed: 99)
    for _ in 0..<history {
        let trial = try await storage.startTrial(studyID: study.studyID)
        let parameters = problem.space.sampleUniform(using: &rng)
        try await storage.setParameters(trialID: trial.id, parameters)
        try await storage.finishTrial(trialID: trial.id, state: .complete, values: problem.evaluate(parameters), constraints: nil)
    }
    let clock = ContinuousClock()
    let start = clock.now
    let cpuStart = processCPUSeconds()
    for _ in 0..<repeats {
        let trial = try await study.ask()
        let values = problem.evaluate(trial.parameters)
        try await study.tell(trial, Evaluation(values: values))
    }
    let cpu = processCPUSeconds() - cpuStart
    let wall = clock.now - start
    let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) * 1e-18
    return (seconds * 1000 / Double(repeats), cpu * 1000 / Double(repeats))
}

func main() async throws {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    var problems: [Problem] = []
    for name in options.problems where !options.skipQuality {
        if name.hasPrefix("nb201-") {
            problems.append(try NB201.problem(device: String(name.dropFirst(6)), dataDirectory: options.nb201))
        } else {
            problems.append(Continuous.problem(name))
        }
    }
    _ = FileManager.default.createFile(atPath: options.out, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: options.out))
    func emit(_ fields: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        handle.write(data + Data("\n".utf8))
        print(String(decoding: data, as: UTF8.self))
    }
    let budget = options.checkpoints.max()!
    if !options.skipQuality {
        let jobs = options.samplers.flatMap { s in problems.flatMap { p in (0..<options.seeds).map { (s, p, UInt64($0)) } } }
        let width = max(1, ProcessInfo.processInfo.activeProcessorCount)
        try await withThrowingTaskGroup(of: (String, String, UInt64, [Int: Double]).self) { group in
            var next = 0
            func launch() throws {
                let (samplerName, problem, seed) = jobs[next]
                let sampler = try makeSampler(samplerName, budget: budget)
                group.addTask { (samplerName, problem.name, seed, try await quality(problem: problem, sampler: sampler, seed: seed, checkpoints: options.checkpoints)) }
                next += 1
            }
            while next < min(width, jobs.count) { try launch() }
            while let (samplerName, problemName, seed, ratios) = try await group.next() {
                for (trials, ratio) in ratios.sorted(by: { $0.key < $1.key }) {
                    emit(["framework": "edgenas", "sampler": samplerName, "problem": problemName, "seed": seed, "trials": trials, "hv_ratio": ratio])
                }
                if next < jobs.count { try launch() }
            }
        }
    }
    if !options.skipOverhead {
        // Overhead on ZDT1 (6 floats, 2 objectives) and single-threaded, for a fair timing.
        let problem = Continuous.problem("zdt1")
        for samplerName in options.samplers {
            for size in options.overheadSizes {
                let ms = try await overhead(problem: problem, sampler: try makeSampler(samplerName, budget: size), history: size, repeats: options.repeats)
                emit(["framework": "edgenas", "sampler": samplerName, "problem": problem.name, "trials": size,
                      "ms_per_trial": ms.wall, "cpu_ms_per_trial": ms.cpu])
            }
        }
    }
}

do {
    try await main()
} catch {
    FileHandle.standardError.write(Data("edgenas-bench-search: \(error)\n".utf8))
    exit(1)
}
