import Foundation

/// Pareto tools on loss vectors (every objective minimised; negate maximised ones first,
/// see `lossVector`).
public enum Pareto {
    /// Whether `a` dominates `b`: no worse in every objective, better in at least one.
    @inlinable
    public static func dominates(_ a: [Double], _ b: [Double]) -> Bool {
        var strictlyBetter = false
        for i in a.indices {
            if a[i] > b[i] { return false }
            if a[i] < b[i] { strictlyBetter = true }
        }
        return strictlyBetter
    }

    /// Fast non-dominated sorting (Deb et al., O(M N^2)): the rank of each point, 0 for the
    /// Pareto front, 1 for the front once rank 0 is removed, and so on.
    public static func nonDominatedRanks(_ points: [[Double]]) -> [Int] {
        let n = points.count
        var dominatedBy = [Int](repeating: 0, count: n)      // how many points dominate i
        var dominating = [[Int]](repeating: [], count: n)    // points that i dominates
        for i in 0..<n {
            for j in (i + 1)..<max(n, i + 1) {
                if dominates(points[i], points[j]) {
                    dominating[i].append(j); dominatedBy[j] += 1
                } else if dominates(points[j], points[i]) {
                    dominating[j].append(i); dominatedBy[i] += 1
                }
            }
        }
        var ranks = [Int](repeating: 0, count: n)
        var front = (0..<n).filter { dominatedBy[$0] == 0 }
        var rank = 0
        while !front.isEmpty {
            var next: [Int] = []
            for i in front {
                ranks[i] = rank
                for j in dominating[i] {
                    dominatedBy[j] -= 1
                    if dominatedBy[j] == 0 { next.append(j) }
                }
            }
            front = next
            rank += 1
        }
        return ranks
    }

    /// The first fronts (rank 0, 1, ...) until they hold at least `minimumCount` points,
    /// without ranking the rest: O(N x front size) per front instead of O(N^2) overall.
    public static func leadingFronts(_ points: [[Double]], minimumCount: Int) -> [[Int]] {
        // In lexicographic order a point can only be dominated by points before it, and a
        // point dominated by anything is dominated by a front member (transitivity), so one
        // scan against the front found so far extracts the front.
        guard let m = points.first?.count else { return [] }
        precondition(points.allSatisfy { $0.count == m }, "points of one dimension")
        // One flat copy of the coordinates: comparing through the per-point arrays (bounds
        // checks, reference counting) was most of the cost on long histories.
        return leadingFronts(flat: points.flatMap { $0 }, dimension: m, minimumCount: minimumCount)
    }

    /// `leadingFronts` of points stored one after another: point i is
    /// `flat[i * dimension ..< (i + 1) * dimension]`.
    static func leadingFronts(flat: [Double], dimension m: Int, minimumCount: Int) -> [[Int]] {
        guard m > 0 else { return [] }
        let count = flat.count / m
        return flat.withUnsafeBufferPointer { flat in
            // Lexicographic order of points a and b, from coordinate 1 on (the sort below
            // compares coordinate 0 itself).
            func lessAfterFirst(_ a: Int, _ b: Int) -> Bool {
                for k in 1..<max(m, 1) {
                    let x = flat[a * m + k], y = flat[b * m + k]
                    if x < y { return true }
                    if y < x { return false }
                }
                return false
            }
            // `dominates(points[a], points[b])` on the flat copy.
            func flatDominates(_ a: Int, _ b: Int) -> Bool {
                var strictlyBetter = false
                for k in 0..<m {
                    let x = flat[a * m + k], y = flat[b * m + k]
                    if x > y { return false }
                    if x < y { strictlyBetter = true }
                }
                return strictlyBetter
            }
            // The lexicographic order, ties kept in index order, as a stable sort of the
            // indices by points gives: a bucket sort by the first coordinate (linear; the
            // comparison sort it replaces was half of this function's time on 1,000
            // points), then each run of equal first coordinates sorted by the rest.
            let firsts = (0..<count).map { flat[$0 * m] }
            var remaining: [Int]
            if firsts.allSatisfy(\.isFinite), let low = firsts.min(), let high = firsts.max() {
                remaining = stableOrder(firsts, low: low, high: high)
                var start = 0
                while start < count {
                    var end = start + 1
                    while end < count && firsts[remaining[end]] == firsts[remaining[start]] { end += 1 }
                    if end - start > 1 { remaining[start..<end].sort(by: lessAfterFirst) }
                    start = end
                }
            } else {
                // NaN or infinite coordinates: the comparison sort, whatever it makes of them.
                var keyed = (0..<count).map { (first: firsts[$0], index: $0) }
                keyed.sort { a, b in
                    if a.first < b.first { return true }
                    if b.first < a.first { return false }
                    return lessAfterFirst(a.index, b.index)
                }
                remaining = keyed.map(\.index)
            }
            // In two dimensions a front found in lexicographic order has non-increasing
            // second coordinates, so a point is dominated by a member exactly when it is by
            // the last one (the others are no better in the second coordinate, and one as
            // good would be a duplicate of the last): one check instead of a scan of the
            // front, which was most of this function's time on 1,000 points.
            let twoDimensional = m == 2 && flat.allSatisfy(\.isFinite)
            var fronts: [[Int]] = []
            var taken = 0
            while taken < minimumCount, !remaining.isEmpty {
                var front: [Int] = [], rest: [Int] = []
                for i in remaining {
                    let dominated: Bool
                    if twoDimensional, let last = front.last {
                        let best = (flat[last * 2], flat[last * 2 + 1]), point = (flat[i * 2], flat[i * 2 + 1])
                        dominated = best.1 < point.1 || (best.1 == point.1 && best.0 < point.0)
                    } else {
                        dominated = front.contains { flatDominates($0, i) }
                    }
                    if dominated { rest.append(i) } else { front.append(i) }
                }
                fronts.append(front)
                taken += front.count
                remaining = rest
            }
            return fronts
        }
    }

    /// Indices of the non-dominated points (duplicates of a front point are all kept).
    public static func nonDominatedIndices(_ points: [[Double]]) -> [Int] {
        points.indices.filter { i in !points.indices.contains { j in j != i && dominates(points[j], points[i]) } }
    }

    /// NSGA-II crowding distance of each point within one front (infinite at the extremes).
    public static func crowdingDistances(_ points: [[Double]]) -> [Double] {
        let n = points.count
        guard n > 2 else { return [Double](repeating: .infinity, count: n) }
        var distance = [Double](repeating: 0, count: n)
        for m in points[0].indices {
            let order = (0..<n).sorted { points[$0][m] < points[$1][m] }
            let range = points[order[n - 1]][m] - points[order[0]][m]
            distance[order[0]] = .infinity
            distance[order[n - 1]] = .infinity
            guard range > 0 else { continue }
            for k in 1..<(n - 1) {
                distance[order[k]] += (points[order[k + 1]][m] - points[order[k - 1]][m]) / range
            }
        }
        return distance
    }

    /// The hypervolume dominated by `points` and bounded by `reference` (minimisation).
    /// Exact: a sweep in 2-D, slicing plus sweeps in 3-D, recursive slicing (HSO) above.
    /// Points that do not strictly dominate the reference contribute nothing.
    public static func hypervolume(_ points: [[Double]], reference: [Double]) -> Double {
        let useful = points.filter { p in zip(p, reference).allSatisfy { $0 < $1 } }
        guard !useful.isEmpty else { return 0 }
        switch reference.count {
        case 1: return reference[0] - useful.map { $0[0] }.min()!
        case 2: return hypervolume2D(useful, reference: reference)
        default: return hypervolumeBySlicing(useful, reference: reference)
        }
    }

    /// 2-D sweep: sort by the first objective, add the rectangle each new step of the
    /// staircase contributes. O(N log N).
    static func hypervolume2D(_ points: [[Double]], reference: [Double]) -> Double {
        let sorted = points.sorted { $0[0] != $1[0] ? $0[0] < $1[0] : $0[1] < $1[1] }
        var volume = 0.0
        var bestSecond = reference[1]
        for p in sorted where p[1] < bestSecond {
            volume += (reference[0] - p[0]) * (bestSecond - p[1])
            bestSecond = p[1]
        }
        return volume
    }

    /// Slices along the last objective: between consecutive values, the dominated region
    /// is the (d-1)-dimensional hypervolume of the points already reached, times the
    /// slab's thickness. Recurses down to the 2-D sweep.
    static func hypervolumeBySlicing(_ points: [[Double]], reference: [Double]) -> Double {
        let d = reference.count
        if d == 2 { return hypervolume2D(points, reference: reference) }
        let sorted = points.sorted { $0[d - 1] < $1[d - 1] }
        let lowerReference = Array(reference.prefix(d - 1))
        var volume = 0.0
        var active: [[Double]] = []
        for (k, p) in sorted.enumerated() {
            active.append(Array(p.prefix(d - 1)))
            let top = k + 1 < sorted.count ? sorted[k + 1][d - 1] : reference[d - 1]
            let thickness = top - p[d - 1]
            if thickness > 0 {
                // Keep only the non-dominated projections: cheaper recursion, same volume.
                active = nonDominatedIndices(active).map { active[$0] }
                volume += thickness * hypervolumeBySlicing(active, reference: lowerReference)
            }
        }
        return volume
    }

    /// Inverted generational distance: the mean, over the reference front, of the distance
    /// to the nearest approximating point. Lower is better; 0 when the front is covered.
    public static func igd(_ approximation: [[Double]], referenceFront: [[Double]]) -> Double {
        guard !approximation.isEmpty, !referenceFront.isEmpty else { return .infinity }
        var total = 0.0
        for r in referenceFront {
            var best = Double.infinity
            for a in approximation {
                var squared = 0.0
                for i in r.indices { squared += (r[i] - a[i]) * (r[i] - a[i]) }
                best = min(best, squared)
            }
            total += best.squareRoot()
        }
        return total / Double(referenceFront.count)
    }
}
