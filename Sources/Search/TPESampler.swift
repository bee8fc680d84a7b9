import Foundation
import Randomness

/// Tree-structured Parzen Estimator (Bergstra et al. 2011), following Optuna's defaults:
/// after `startupTrials` random trials, the trials are split into the best
/// gamma(n) = min(ceil(0.1 n), 25) ("below") and the rest ("above"); a Parzen mixture is
/// fitted to each, `eiCandidates` points are drawn from the "below" mixture l(x) and the
/// one maximising l(x) / g(x) is proposed.
///
/// - `multivariate`: one joint mixture over the parameters every trial has (kernels keep
///   the parameters of one observation together), instead of one mixture per parameter.
/// - Several objectives (MOTPE): "below" is filled by non-domination rank, the last rank
///   cut by greedy hypervolume contribution, and its kernels are weighted by each point's
///   hypervolume contribution.
/// - Constraints: feasible trials rank before infeasible ones (by total violation).
/// - `constantLiar`: running trials count as the worst ones, so parallel workers spread.
public struct TPESampler: Sampler {
    public var multivariate: Bool
    public var startupTrials: Int
    public var eiCandidates: Int
    public var priorWeight: Double
    public var constantLiar: Bool

    public init(multivariate: Bool = false, startupTrials: Int = 10, eiCandidates: Int = 24, priorWeight: Double = 1.0, constantLiar: Bool = false) {
        self.multivariate = multivariate
        self.startupTrials = startupTrials
        self.eiCandidates = eiCandidates
        self.priorWeight = priorWeight
        self.constantLiar = constantLiar
    }

    public var name: String { multivariate ? "tpe-multivariate" : "tpe" }

    /// Optuna's default gamma.
    static func gamma(_ n: Int) -> Int { min(Int((0.1 * Double(n)).rounded(.up)), 25) }

    /// Optuna's default observation weights: the 25 newest weigh 1, older ones ramp down.
    static func defaultWeights(_ n: Int) -> [Double] {
        guard n >= 25 else { return [Double](repeating: 1, count: n) }
        let rampCount = n - 25
        var weights: [Double] = (0..<rampCount).map { i in
            rampCount == 1 ? 1.0 / Double(n) : 1.0 / Double(n) + (1 - 1.0 / Double(n)) * Double(i) / Double(rampCount - 1)
        }
        weights += [Double](repeating: 1, count: 25)
        return weights
    }

    public func sample(space: SearchSpace, context: SamplingContext) -> [String: ParameterValue] {
        var rng = context.rng("tpe")
        let trials = context.trials
        let objectives = context.directions.count
        let finished = trials.indices.reduce(0) { count, i in
            let state = trials[i].state
            return count + ((state == .complete && trials[i].values?.count == objectives) || state == .pruned ? 1 : 0)
        }
        guard finished >= startupTrials else { return space.sampleUniform(using: &rng) }
        // Trials are handled by index into `context.trials` from here on: copying trial
        // records (each holds several dictionaries) dominated the cost on long studies.
        let (below, above, belowWeights) = split(context)
        guard !below.isEmpty else { return space.sampleUniform(using: &rng) }
        // Shared by the estimators of every parameter observed in all split trials.
        let belowKernels = ParzenEstimator.KernelWeights(belowWeights, priorWeight: priorWeight)
        let aboveKernels = ParzenEstimator.KernelWeights(Self.defaultWeights(above.count), priorWeight: priorWeight)
        let columns = ColumnCache.shared.columns(space.parameters, in: trials)

        var result: [String: ParameterValue] = [:]
        if multivariate {
            // Joint model over the parameters present in every split trial (the rest, such
            // as conditional parameters, fall back to the independent model below).
            var joint: [SearchParameter] = [], belowColumns: [ParzenEstimator.Column] = [], aboveColumns: [ParzenEstimator.Column] = []
            for (parameter, values) in zip(space.parameters, columns) {
                guard below.allSatisfy(values.isPresent) && above.allSatisfy(values.isPresent) else { continue }
                joint.append(parameter)
                belowColumns.append(values.rows(below))
                aboveColumns.append(values.rows(above))
            }
            if !joint.isEmpty {
                let l = ParzenEstimator(parameters: joint, columns: belowColumns, weights: belowKernels)
                let g = ParzenEstimator(parameters: joint, columns: aboveColumns, weights: aboveKernels)
                let chosen = bestCandidate(l: l, g: g, rng: &rng)
                for (k, parameter) in joint.enumerated() { result[parameter.name] = chosen[k] }
            }
        }
        for (parameter, values) in zip(space.parameters, columns) where space.isActive(parameter, in: result) && result[parameter.name] == nil {
            let l: ParzenEstimator, g: ParzenEstimator
            if parameter.condition == nil {
                l = ParzenEstimator(parameters: [parameter], columns: [values.rows(below)], weights: belowKernels)
                g = ParzenEstimator(parameters: [parameter], columns: [values.rows(above)], weights: aboveKernels)
            } else {
                // Only conditional parameters can be missing from a trial.
                let b = below.indices.filter { values.isPresent(below[$0]) }
                let a = above.filter(values.isPresent)
                l = ParzenEstimator(parameters: [parameter], columns: [values.rows(b.map { below[$0] })],
                                    weights: ParzenEstimator.KernelWeights(b.map { belowWeights[$0] }, priorWeight: priorWeight))
                g = ParzenEstimator(parameters: [parameter], columns: [values.rows(a)],
                                    weights: ParzenEstimator.KernelWeights(Self.defaultWeights(a.count), priorWeight: priorWeight))
            }
            result[parameter.name] = bestCandidate(l: l, g: g, rng: &rng)[0]
        }
        return space.activeAssignment(result)
    }

    private func bestCandidate(l: ParzenEstimator, g: ParzenEstimator, rng: inout SplitMix64) -> [ParameterValue] {
        var best: [Double] = []
        var bestScore = -Double.infinity
        // One set of per-kernel buffers for every density evaluation of this choice.
        var scratch = ParzenEstimator.DensityScratch(kernels: max(l.logWeights.count, g.logWeights.count))
        for x in l.samples(max(1, eiCandidates), using: &rng) {
            let score = l.logDensity(x, scratch: &scratch) - g.logDensity(x, scratch: &scratch)
            if score > bestScore || best.isEmpty {
                best = x
                bestScore = score
            }
        }
        return l.values(x: best)
    }

    /// Splits the history into "below" (good) and "above" trials, as indices into
    /// `context.trials` in trial-number order, with the kernel weights of the "below" trials.
    func split(_ context: SamplingContext) -> (below: [Int], above: [Int], belowWeights: [Double]) {
        let directions = context.directions
        let trials = context.trials
        var feasible: [Int] = [], infeasible: [Int] = [], pruned: [Int] = [], running: [Int] = []
        // Fields are read in place: binding `trials[i]` to a constant copied the record.
        for i in trials.indices {
            switch trials[i].state {
            case .complete where trials[i].values?.count == directions.count:
                if trials[i].isFeasible { feasible.append(i) } else { infeasible.append(i) }
            case .pruned: pruned.append(i)
            case .running where constantLiar && !trials[i].parameters.isEmpty: running.append(i)
            default: break
            }
        }
        let violations = infeasible.map { violation(trials[$0]) }
        infeasible = infeasible.indices.sorted { violations[$0] < violations[$1] }.map { infeasible[$0] }
        // Pruned trials: those that got further are better, then by their last value.
        let sign = directions[0] == .minimize ? 1.0 : -1.0
        pruned.sort { i, j in
            let a = trials[i], b = trials[j]
            let sa = a.intermediateValues.keys.max() ?? -1, sb = b.intermediateValues.keys.max() ?? -1
            if sa != sb { return sa > sb }
            let va = sa >= 0 ? sign * a.intermediateValues[sa]! : .infinity
            let vb = sb >= 0 ? sign * b.intermediateValues[sb]! : .infinity
            return va < vb
        }
        let total = feasible.count + infeasible.count + pruned.count + running.count
        var nBelow = Self.gamma(total)

        var below: [Int] = []
        var rest: [Int] = []
        var belowWeights: [Double]? = nil
        if directions.count == 1 {
            let keys = feasible.map { sign * trials[$0].values![0] }
            let ordered = feasible.indices.sorted { keys[$0] < keys[$1] }.map { feasible[$0] }
            below = Array(ordered.prefix(nBelow))
            rest = Array(ordered.dropFirst(nBelow))
        } else {
            // Loss vectors one after another (as `lossVector` gives them), without an array
            // per trial.
            let m = directions.count
            var losses: [Double] = []
            losses.reserveCapacity(feasible.count * m)
            for i in feasible {
                for (k, direction) in directions.enumerated() {
                    let value = trials[i].values![k]
                    losses.append(direction == .minimize ? value : -value)
                }
            }
            let chosen = Self.selectMultiObjective(losses, dimension: m, count: min(nBelow, feasible.count))
            var isChosen = [Bool](repeating: false, count: feasible.count)
            for c in chosen { isChosen[c] = true }
            below = chosen.map { feasible[$0] }
            rest = feasible.indices.filter { !isChosen[$0] }.map { feasible[$0] }
            belowWeights = Self.hypervolumeContributionWeights(chosen.map { Array(losses[($0 * m)..<($0 * m + m)]) })
        }
        nBelow -= below.count
        for group in [pruned, infeasible] {
            let take = min(nBelow, group.count)
            below += group.prefix(take)
            rest += group.dropFirst(take)
            nBelow -= take
            if belowWeights != nil { belowWeights! += [Double](repeating: belowWeights!.min() ?? 1, count: take) }
        }
        rest += running
        // Kernels are weighted by age (trial number), so sort both groups by number.
        let order = below.indices.sorted { trials[below[$0]].number < trials[below[$1]].number }
        let weights = belowWeights.map { w in order.map { w[$0] } } ?? Self.defaultWeights(below.count)
        return (order.map { below[$0] }, rest.sorted { trials[$0].number < trials[$1].number }, weights)
    }

    private func violation(_ trial: FrozenTrial) -> Double {
        (trial.constraints ?? []).reduce(0) { $0 + max(0, $1) }
    }

    /// Picks `count` of the points (`losses`: one after another, `dimension` numbers each):
    /// whole non-domination ranks first, then the last rank cut by greedy hypervolume
    /// contribution (Optuna's HSSP approximation).
    static func selectMultiObjective(_ losses: [Double], dimension m: Int, count: Int) -> [Int] {
        guard count > 0 else { return [] }
        var chosen: [Int] = []
        for front in Pareto.leadingFronts(flat: losses, dimension: m, minimumCount: count) where chosen.count < count {
            if chosen.count + front.count <= count {
                chosen += front
            } else {
                let points = front.map { Array(losses[($0 * m)..<($0 * m + m)]) }
                chosen += greedyHypervolumeSubset(points, count: count - chosen.count).map { front[$0] }
            }
        }
        return chosen
    }

    /// Greedily adds the point that increases the hypervolume most. For two objectives the
    /// chosen points are kept as a staircase in the order `Pareto.hypervolume2D` sorts them and
    /// each candidate is merged into one sweep, which adds the same rectangles in the same order
    /// as rebuilding the point list, so the gains (and the choice) are bit-identical.
    static func greedyHypervolumeSubset(_ points: [[Double]], count: Int) -> [Int] {
        let reference = referencePoint(points)
        if reference.count == 2 {
            var staircase = HypervolumeStaircase(reference: reference)
            return greedySubset(count: count, candidates: points.count,
                                volumeAdding: { i, _ in staircase.volume(adding: (points[i][0], points[i][1])) },
                                choose: { i in staircase.insert((points[i][0], points[i][1])) })
        }
        return greedySubset(count: count, candidates: points.count,
                            volumeAdding: { i, chosen in Pareto.hypervolume(chosen.map { points[$0] } + [points[i]], reference: reference) },
                            choose: { _ in })
    }

    /// The greedy loop: `count` times, the candidate whose addition gives the largest volume.
    private static func greedySubset(
        count: Int, candidates candidateCount: Int, volumeAdding: (Int, [Int]) -> Double, choose: (Int) -> Void
    ) -> [Int] {
        var chosen: [Int] = []
        var candidates = Array(0..<candidateCount)
        var current = 0.0
        while chosen.count < count, !candidates.isEmpty {
            var bestGain = -Double.infinity, bestPosition = 0
            for (position, i) in candidates.enumerated() {
                let gain = volumeAdding(i, chosen) - current
                if gain > bestGain { bestGain = gain; bestPosition = position }
            }
            let i = candidates.remove(at: bestPosition)
            chosen.append(i)
            choose(i)
            current += bestGain
        }
        return chosen
    }

    /// A reference point just beyond the worst value of each objective.
    static func referencePoint(_ points: [[Double]]) -> [Double] {
        points[0].indices.map { m in
            let worst = points.map { $0[m] }.max()!
            return worst + max(abs(worst) * 0.1, 1e-12)
        }
    }

    /// MOTPE weights: each point's exclusive hypervolume contribution, relative to the
    /// largest, floored so that no kernel vanishes.
    static func hypervolumeContributionWeights(_ points: [[Double]]) -> [Double] {
        guard points.count > 1 else { return [Double](repeating: 1, count: points.count) }
        let reference = referencePoint(points)
        let total = Pareto.hypervolume(points, reference: reference)
        let contributions: [Double]
        if reference.count == 2 {
            // One sorted staircase; each volume without point i is one sweep skipping it.
            var staircase = HypervolumeStaircase(reference: reference)
            for p in points { staircase.insert((p[0], p[1])) }
            contributions = points.indices.map { i in total - staircase.volume(excluding: (points[i][0], points[i][1])) }
        } else {
            contributions = points.indices.map { i in
                total - Pareto.hypervolume(points.indices.filter { $0 != i }.map { points[$0] }, reference: reference)
            }
        }
        let top = contributions.max() ?? 0
        guard top > 0 else { return [Double](repeating: 1, count: points.count) }
        return contributions.map { max($0 / top, 1e-12) }
    }
}

/// Two-objective points kept sorted as `Pareto.hypervolume2D` sorts them (by the first
/// loss, then the second), with its sweep: volumes of the set plus or minus one point come
/// out bit-identical to `Pareto.hypervolume` of that set, without building it.
struct HypervolumeStaircase {
    let reference: (Double, Double)
    /// The points that strictly dominate the reference (the only ones `Pareto.hypervolume`
    /// counts), in sweep order.
    private(set) var points: [(Double, Double)] = []

    init(reference: [Double]) {
        self.reference = (reference[0], reference[1])
    }

    private static func precedes(_ a: (Double, Double), _ b: (Double, Double)) -> Bool {
        a.0 != b.0 ? a.0 < b.0 : a.1 < b.1
    }

    private func counts(_ p: (Double, Double)) -> Bool { p.0 < reference.0 && p.1 < reference.1 }

    /// After the points that do not sort after `p`, where a stable sort of the set with `p`
    /// appended puts it (equal points are interchangeable in the sweep).
    mutating func insert(_ p: (Double, Double)) {
        guard counts(p) else { return }
        let position = points.firstIndex { Self.precedes(p, $0) } ?? points.count
        points.insert(p, at: position)
    }

    /// The hypervolume of the points and `p`.
    func volume(adding p: (Double, Double)) -> Double {
        var volume = 0.0, bestSecond = reference.1
        var pending = counts(p)
        func sweep(_ q: (Double, Double)) {
            if q.1 < bestSecond {
                volume += (reference.0 - q.0) * (bestSecond - q.1)
                bestSecond = q.1
            }
        }
        for q in points {
            if pending && Self.precedes(p, q) {
                sweep(p)
                pending = false
            }
            sweep(q)
        }
        if pending { sweep(p) }
        return volume
    }

    /// The hypervolume of the points without one point equal to `p` (all of them if `p`
    /// does not count).
    func volume(excluding p: (Double, Double)) -> Double {
        var volume = 0.0, bestSecond = reference.1
        var skipping = counts(p)
        for q in points {
            if skipping && q.0 == p.0 && q.1 == p.1 {
                skipping = false
                continue
            }
            if q.1 < bestSecond {
                volume += (reference.0 - q.0) * (bestSecond - q.1)
                bestSecond = q.1
            }
        }
        return volume
    }
}

/// `ParzenEstimator.Column.all` from the previous ask of a study, process-wide: each ask
/// sees the trials of the one before plus the trial it proposed, and converting every
/// trial's parameters again was a seventh of TPE's time at 1,000 trials. A pure memo: rows
/// are reused while the trials' parameter dictionaries are the very ones the rows were
/// converted from (copies of one stored trial share their dictionary's storage), for equal
/// space parameters, so a hit returns what conversion would. Holds a few recent studies.
final class ColumnCache: @unchecked Sendable {
    static let shared = ColumnCache()
    private static let capacity = 16

    private struct Entry {
        let id: Int
        let parameters: [SearchParameter]
        /// The trials the columns were converted from (kept for their parameters).
        let trials: [FrozenTrial]
        let columns: [ParzenEstimator.Column]
    }

    private let lock = NSLock()
    private var entries: [Entry] = [] // least recently stored first
    private var nextID = 0

    func columns(_ parameters: [SearchParameter], in trials: [FrozenTrial]) -> [ParzenEstimator.Column] {
        let previous = lookUp(parameters, first: trials.first?.parameters)
        // Converted outside the lock: concurrent studies do not wait for each other.
        var reusedRows = 0
        if let previous {
            // Through buffer pointers, the trials are compared in place rather than copied
            // out of the arrays (a reference count update per field).
            previous.trials.withUnsafeBufferPointer { before in
                trials.withUnsafeBufferPointer { now in
                    let limit = min(before.count, now.count)
                    while reusedRows < limit && Self.sameStorage(before[reusedRows].parameters, now[reusedRows].parameters) { reusedRows += 1 }
                }
            }
        }
        let columns = ParzenEstimator.Column.all(parameters, in: trials, reusing: previous?.columns ?? [], reusedRows: reusedRows)
        lock.lock()
        defer { lock.unlock() }
        // The new entry extends the one it reused, which is then no longer needed.
        if let previous { entries.removeAll { $0.id == previous.id } }
        entries.append(Entry(id: nextID, parameters: parameters, trials: trials, columns: columns))
        nextID += 1
        if entries.count > Self.capacity { entries.removeFirst() }
        return columns
    }

    /// The newest entry of the same study, as far as can be told: same parameters and the
    /// same first trial (any entry would be correct; this one has the most rows to reuse).
    private func lookUp(_ parameters: [SearchParameter], first: [String: ParameterValue]?) -> Entry? {
        guard let first else { return nil }
        lock.lock()
        defer { lock.unlock() }
        return entries.last { $0.trials.first.map { Self.sameStorage($0.parameters, first) } == true && $0.parameters == parameters }
    }

    /// Whether two dictionaries are one value by representation (the same storage): then
    /// they are equal, whatever the layout. Unlike `==`, never compares contents, which
    /// costs more than converting the row (two studies with equal histories, for example).
    private static func sameStorage(_ a: [String: ParameterValue], _ b: [String: ParameterValue]) -> Bool {
        withUnsafeBytes(of: a) { a in withUnsafeBytes(of: b) { b in a.elementsEqual(b) } }
    }
}

/// A Parzen mixture over one or several parameters: one kernel per observation plus a
/// broad prior kernel. Numbers are modelled in their internal space (log for log-scaled
/// parameters) with truncated Gaussians (discretised for stepped ones); categoricals with
/// a smoothed indicator of the observed choice.
struct ParzenEstimator {
    enum Component {
        /// Kernel centres and widths in the internal space [low, high]; `step` set when
        /// values lie on a grid (mass of the cell around the value, not a density).
        /// `logNormalisers[k]` = log of kernel k's mass inside [low, high] (plus log sigma for
        /// continuous ones), computed once since every candidate needs it.
        case numeric(mus: [Double], sigmas: [Double], logNormalisers: [Double], low: Double, high: Double, step: Double?, distribution: Distribution)
        /// logProbabilities[kernel][choice].
        case categorical(logProbabilities: [[Double]], choices: [ParameterValue])
    }

    /// One parameter's observations in the form the estimator uses, converted once per
    /// trial (not once per estimator) and free of reference counting: numbers in the
    /// internal space, categories as choice indices (-1 for a value that is none of the
    /// choices: an observation that favours no choice). nil where the trial lacks it.
    enum Column {
        case numeric([Double?])
        case categorical([Int?])

        /// Every parameter's column over the trials, in one pass: each trial's parameter
        /// dictionary is fetched once and each value looked up once. The first
        /// `reusedRows` rows are copied from `previous` (the columns of the same parameters
        /// over trials whose first `reusedRows` had the same parameter values).
        static func all(_ parameters: [SearchParameter], in trials: [FrozenTrial], reusing previous: [Column] = [], reusedRows: Int = 0) -> [Column] {
            let names = parameters.map(\.name), distributions = parameters.map(\.distribution)
            let choices: [[ParameterValue]?] = distributions.map { if case .categorical(let choices) = $0 { choices } else { nil } }
            var numbers = [[Double?]](repeating: [], count: parameters.count)
            var indices = [[Int?]](repeating: [], count: parameters.count)
            for p in parameters.indices {
                if choices[p] == nil { numbers[p].reserveCapacity(trials.count) } else { indices[p].reserveCapacity(trials.count) }
                if reusedRows > 0 {
                    switch previous[p] {
                    case .numeric(let column): numbers[p] += column.prefix(reusedRows)
                    case .categorical(let column): indices[p] += column.prefix(reusedRows)
                    }
                }
            }
            // In a space of a few parameters, walking a trial's dictionary and matching each
            // key against the names (short strings, equal in their bits when equal) is
            // cheaper than hashing every name for every trial, which was most of this pass.
            let matchNames = names.count <= 16
            var found = [ParameterValue?](repeating: nil, count: names.count)
            for i in reusedRows..<trials.count {
                let values = trials[i].parameters
                if matchNames {
                    for p in found.indices { found[p] = nil }
                    for (key, value) in values {
                        if let p = names.firstIndex(of: key) { found[p] = value }
                    }
                }
                for p in names.indices {
                    let value = matchNames ? found[p] : values[names[p]]
                    if let choices = choices[p] {
                        indices[p].append(value.map { choices.firstIndex(of: $0) ?? -1 })
                    } else {
                        numbers[p].append(value.map { ParzenEstimator.toInternal(distributions[p], $0) })
                    }
                }
            }
            return parameters.indices.map { choices[$0] == nil ? .numeric(numbers[$0]) : .categorical(indices[$0]) }
        }

        func isPresent(_ row: Int) -> Bool {
            switch self {
            case .numeric(let values): values[row] != nil
            case .categorical(let values): values[row] != nil
            }
        }

        /// The observations of the given rows, in that order.
        func rows(_ rows: [Int]) -> Column {
            switch self {
            case .numeric(let values): .numeric(rows.map { values[$0] })
            case .categorical(let values): .categorical(rows.map { values[$0] })
            }
        }
    }

    /// Normalised log weights of the observations' kernels, then of the prior kernel.
    struct KernelWeights {
        let logWeights: [Double]
        let priorWeight: Double

        init(_ weights: [Double], priorWeight: Double) {
            var w = weights + [priorWeight]
            let sum = w.reduce(0, +)
            w = w.map { $0 / sum }
            logWeights = w.map { Foundation.log(max($0, 1e-300)) }
            self.priorWeight = priorWeight
        }
    }

    let logWeights: [Double]
    let components: [Component]
    /// Set for one continuous parameter with many kernels (TPE's "above" estimators).
    let nearbyKernels: NearbyKernels?

    /// The observation kernels of a one-parameter continuous mixture sorted by centre, and
    /// bounds on their terms, so that `logDensity` can skip the kernels too far from the
    /// point to count: of the ~1,000 kernels of an "above" estimator at 1,000 trials, with
    /// widths near the range over 100, about a fifth are within the 40 nats that
    /// `logSumExp` keeps; computing every kernel's term and their maximum was a fifth of
    /// independent TPE's time, and skipping the rest cut an ask by a quarter.
    struct NearbyKernels {
        /// Worth it from about this many kernels (below, the full pass is as cheap).
        static let minimumKernels = 64
        let sortedMus: [Double]
        /// The kernel index of each sorted centre.
        let sortedKernels: [Int]
        /// The widest observation kernel's sigma.
        let widestSigma: Double
        /// The largest kernel term at distance 0: max over observation kernels k of
        /// logWeights[k] - log sqrt(2 pi) - logNormalisers[k]. Kernel k's term is at most
        /// this minus (x - mu_k)^2 / (2 widestSigma^2).
        let highestTerm: Double

        /// Positions in `sortedMus` from the first centre >= `value` (`orAbove` false) or
        /// > `value` (true).
        func position(of value: Double, orAbove: Bool) -> Int {
            var low = 0, high = sortedMus.count
            while low < high {
                let middle = (low + high) / 2
                if sortedMus[middle] < value || (orAbove && sortedMus[middle] == value) { low = middle + 1 } else { high = middle }
            }
            return low
        }
    }

    /// Per-kernel buffers for the density evaluations of one choice, reused across
    /// candidates: allocating them for every candidate was a large part of TPE's cost.
    struct DensityScratch {
        var terms: [Double]
        /// One bit per kernel: the kernels a windowed evaluation computed (all clear
        /// between evaluations).
        var marks: [UInt64]

        init(kernels: Int) {
            terms = [Double](repeating: 0, count: kernels)
            marks = [UInt64](repeating: 0, count: (kernels + 63) / 64)
        }
    }

    /// `columns[p]`: parameter p's value in each observation (nil only where a categorical
    /// parameter is missing); `weights`: the kernels' weights, one per observation and
    /// the prior's.
    init(parameters: [SearchParameter], columns: [Column], weights: KernelWeights) {
        logWeights = weights.logWeights
        let priorWeight = weights.priorWeight
        let kernelCount = logWeights.count, n = kernelCount - 1
        var nearby: NearbyKernels? = nil
        components = zip(parameters, columns).map { parameter, column in
            switch (parameter.distribution, column) {
            case (.categorical(let choices), .categorical(let indices)):
                let k = choices.count
                var rows: [[Double]] = indices.map { index in
                    var row = [Double](repeating: priorWeight / Double(kernelCount), count: k)
                    if let index, index >= 0 { row[index] += 1 }
                    let total = row.reduce(0, +)
                    return row.map { Foundation.log($0 / total) }
                }
                rows.append([Double](repeating: -Foundation.log(Double(k)), count: k))
                return .categorical(logProbabilities: rows, choices: choices)
            case (.int, .numeric(let values)), (.float, .numeric(let values)):
                let (low, high, step) = ParzenEstimator.internalBounds(parameter.distribution)
                // Kernels at the observations, then the prior kernel over the whole range.
                var mus = values.map { $0! }
                // Multivariate: Scott-like rule shared by every kernel (as Optuna); else the
                // gaps to the neighbours.
                let order = parameters.count > 1 ? [] : stableOrder(mus, low: low, high: high)
                let widths = parameters.count > 1
                    ? [Double](repeating: 0.2 * pow(Double(max(n, 1)), -1.0 / Double(parameters.count + 4)) * (high - low), count: n)
                    : ParzenEstimator.neighbourSigmas(mus, order: order, low: low, high: high)
                mus.append(0.5 * (low + high))
                // Optuna's "magic clip": no kernel narrower than the range over min(100, kernels).
                let minSigma = (high - low) / min(100, 1 + Double(kernelCount))
                var sigmas: [Double] = [], logNormalisers: [Double] = []
                sigmas.reserveCapacity(kernelCount)
                logNormalisers.reserveCapacity(kernelCount)
                // Many kernels share a width (the clip, the multivariate rule): reuse the last log.
                var lastSigma = Double.nan, lastLogSigma = 0.0
                for k in 0..<kernelCount {
                    let mu = mus[k], sigma = k < n ? min(max(widths[k], minSigma), high - low) : high - low
                    if step == nil && sigma != lastSigma {
                        lastSigma = sigma
                        lastLogSigma = Foundation.log(sigma)
                    }
                    sigmas.append(sigma)
                    logNormalisers.append(Gaussian.logMass((low - mu) / sigma, (high - mu) / sigma) + (step == nil ? lastLogSigma : 0))
                }
                if parameters.count == 1 && step == nil && n >= NearbyKernels.minimumKernels {
                    var highestTerm = -Double.infinity
                    for k in 0..<n { highestTerm = max(highestTerm, weights.logWeights[k] - Gaussian.logSqrt2Pi - logNormalisers[k]) }
                    nearby = NearbyKernels(sortedMus: order.map { mus[$0] }, sortedKernels: order,
                                           widestSigma: sigmas[0..<n].max()!, highestTerm: highestTerm)
                }
                return .numeric(mus: mus, sigmas: sigmas, logNormalisers: logNormalisers, low: low, high: high, step: step, distribution: parameter.distribution)
            default:
                preconditionFailure("the column of \(parameter.name) does not match its distribution")
            }
        }
        nearbyKernels = nearby
    }

    /// Each kernel's width: the larger gap to its sorted neighbours (the bounds count as
    /// neighbours only for the extreme kernels' inner side, as Optuna without endpoints).
    /// `order`: `stableOrder(mus, low: low, high: high)`.
    static func neighbourSigmas(_ mus: [Double], order: [Int], low: Double, high: Double) -> [Double] {
        let n = mus.count
        guard n > 0 else { return [] }
        let sorted = order.map { mus[$0] }
        let padded: [Double] = [low] + sorted + [high]
        var sortedSigmas: [Double] = (1...n).map { (i: Int) -> Double in
            let left: Double = padded[i] - padded[i - 1]
            let right: Double = padded[i + 1] - padded[i]
            return max(left, right)
        }
        if n >= 2 {
            sortedSigmas[0] = padded[2] - padded[1]
            sortedSigmas[n - 1] = padded[n] - padded[n - 1]
        }
        var sigmas = [Double](repeating: 0, count: n)
        for (position, index) in order.enumerated() { sigmas[index] = sortedSigmas[position] }
        return sigmas
    }

    /// The internal interval of a numeric distribution: widened by half a step so that
    /// every grid value owns an equal cell, then logged for log-scaled ones.
    static func internalBounds(_ distribution: Distribution) -> (low: Double, high: Double, step: Double?) {
        switch distribution {
        case .int(let low, let high, let step, let log):
            if log { return (Foundation.log(Double(low) - 0.5), Foundation.log(Double(high) + 0.5), nil) }
            return (Double(low) - 0.5 * Double(step), Double(high) + 0.5 * Double(step), Double(step))
        case .float(let low, let high, let step, let log):
            if log { return (Foundation.log(low), Foundation.log(high), nil) }
            if let step { return (low - 0.5 * step, high + 0.5 * step, step) }
            return (low, high, nil)
        case .categorical: return (0, 1, nil)
        }
    }

    static func toInternal(_ distribution: Distribution, _ value: ParameterValue) -> Double {
        let v = value.numericValue ?? 0
        switch distribution {
        case .int(_, _, _, true), .float(_, _, _, true): return Foundation.log(v)
        default: return v
        }
    }

    static func fromInternal(_ distribution: Distribution, _ x: Double) -> ParameterValue {
        switch distribution {
        case .int(_, _, _, let log): return .int(distribution.snapInt(log ? Foundation.exp(x) : x))
        case .float(_, _, _, let log): return .double(distribution.snapFloat(log ? Foundation.exp(x) : x))
        case .categorical(let choices): return choices[Int(x)]
        }
    }

    /// `count` draws, each: pick a kernel by weight, then each component from that kernel.
    /// Numeric draws are snapped to the grid here so that densities are evaluated at real
    /// values. (The kernel weights are exponentiated once for all draws.)
    func samples(_ count: Int, using rng: inout SplitMix64) -> [[Double]] {
        let weights = logWeights.map { Foundation.exp($0) }
        return (0..<count).map { _ in
            var u = rng.nextUnit()
            var kernel = weights.count - 1
            for (k, weight) in weights.enumerated() {
                u -= weight
                if u < 0 { kernel = k; break }
            }
            return components.map { component in
                switch component {
                case .numeric(let mus, let sigmas, _, let low, let high, _, let distribution):
                    let x = Gaussian.sampleTruncated(mu: mus[kernel], sigma: sigmas[kernel], low: low, high: high, using: &rng)
                    return ParzenEstimator.toInternal(distribution, ParzenEstimator.fromInternal(distribution, x))
                case .categorical(let logProbabilities, _):
                    var v = rng.nextUnit()
                    let row = logProbabilities[kernel]
                    for (index, lp) in row.enumerated() {
                        v -= Foundation.exp(lp)
                        if v < 0 { return Double(index) }
                    }
                    return Double(row.count - 1)
                }
            }
        }
    }

    func values(x: [Double]) -> [ParameterValue] {
        zip(components, x).map { component, value in
            switch component {
            case .numeric(_, _, _, _, _, _, let distribution): return ParzenEstimator.fromInternal(distribution, value)
            case .categorical(_, let choices): return choices[Int(value)]
            }
        }
    }

    /// log of the mixture density (or mass, for discrete components) at `x`. `scratch`
    /// needs at least one slot per kernel.
    func logDensity(_ x: [Double], scratch: inout DensityScratch) -> Double {
        let kernels = logWeights.count
        precondition(scratch.terms.count >= kernels, "scratch needs one slot per kernel")
        if let nearbyKernels, case .numeric(let mus, let sigmas, let logNormalisers, _, _, _, _) = components[0],
           let density = nearbyLogDensity(x[0], nearbyKernels, mus: mus, sigmas: sigmas, logNormalisers: logNormalisers, scratch: &scratch) {
            return density
        }
        return scratch.terms.withUnsafeMutableBufferPointer { buffer in
            let perKernel = UnsafeMutableBufferPointer(rebasing: buffer[0..<kernels])
            _ = perKernel.update(fromContentsOf: logWeights)
            for (component, value) in zip(components, x) {
                switch component {
                case .numeric(let mus, let sigmas, let logNormalisers, let low, let high, let step, _):
                    mus.withUnsafeBufferPointer { mus in
                        sigmas.withUnsafeBufferPointer { sigmas in
                            logNormalisers.withUnsafeBufferPointer { logNormalisers in
                                if let step {
                                    let cellLow: Double = max(value - 0.5 * step, low)
                                    let cellHigh: Double = min(value + 0.5 * step, high)
                                    for k in 0..<kernels {
                                        let a = (cellLow - mus[k]) / sigmas[k]
                                        let b = (cellHigh - mus[k]) / sigmas[k]
                                        perKernel[k] += Gaussian.logMass(a, b) - logNormalisers[k]
                                    }
                                } else {
                                    for k in 0..<kernels {
                                        let z = (value - mus[k]) / sigmas[k]
                                        perKernel[k] += -0.5 * z * z - Gaussian.logSqrt2Pi - logNormalisers[k]
                                    }
                                }
                            }
                        }
                    }
                case .categorical(let logProbabilities, _):
                    let index = Int(value)
                    for k in 0..<kernels { perKernel[k] += logProbabilities[k][index] }
                }
            }
            return logSumExp(UnsafeBufferPointer(perKernel))
        }
    }

    /// `logDensity` of a one-parameter continuous mixture from the kernels near `x` only:
    /// bit-identical, since it computes each kept term as the full pass does, takes the
    /// same maximum and adds the same exponentials in kernel order. A kernel is skipped
    /// when its bound (see `NearbyKernels.highestTerm`) is 41 nats below a term already
    /// computed, so below the maximum by more than the 40 nats `logSumExp` keeps (the
    /// extra nat absorbs rounding). nil when too few kernels could be skipped.
    private func nearbyLogDensity(
        _ x: Double, _ nearby: NearbyKernels, mus: [Double], sigmas: [Double], logNormalisers: [Double], scratch: inout DensityScratch
    ) -> Double? {
        let prior = logWeights.count - 1 // the observation kernels are 0..<prior
        // The expression and evaluation order of the full pass: logWeights[k] plus the term.
        func logTerm(_ k: Int) -> Double {
            let z = (x - mus[k]) / sigmas[k]
            return logWeights[k] + (-0.5 * z * z - Gaussian.logSqrt2Pi - logNormalisers[k])
        }
        // A term the maximum is at least: the prior's or that of a centre next to x.
        let next = nearby.position(of: x, orAbove: false)
        var floor = logTerm(prior)
        if next < prior { floor = max(floor, logTerm(nearby.sortedKernels[next])) }
        if next > 0 { floor = max(floor, logTerm(nearby.sortedKernels[next - 1])) }
        let radius = nearby.widestSigma * (2 * (nearby.highestTerm - floor + 41)).squareRoot()
        guard radius.isFinite else { return nil }
        let first = nearby.position(of: x - radius, orAbove: false), end = nearby.position(of: x + radius, orAbove: true)
        guard end - first <= prior / 2 else { return nil }

        var top = -Double.infinity
        func keep(_ k: Int) {
            let term = logTerm(k)
            scratch.terms[k] = term
            scratch.marks[k >> 6] |= 1 << UInt64(k & 63)
            if term > top { top = term }
        }
        for position in first..<end { keep(nearby.sortedKernels[position]) }
        keep(prior)
        // The sum of `logSumExp`, over the kept kernels in kernel order (clearing the marks).
        var sum = 0.0
        for word in scratch.marks.indices where scratch.marks[word] != 0 {
            var bits = scratch.marks[word]
            scratch.marks[word] = 0
            while bits != 0 {
                let term = scratch.terms[word * 64 + bits.trailingZeroBitCount]
                bits &= bits - 1
                if term - top > -40 { sum += Foundation.exp(term - top) }
            }
        }
        guard top > -.infinity else { return -.infinity }
        return top + Foundation.log(sum)
    }
}
