/// The permutation that sorts `values` (all in [low, high]) ascending, ties in index
/// order: exactly what a stable sort gives, found by a bucket sort in linear expected
/// time (a comparison sort of the ~1,000 "above" kernels per parameter dominated TPE;
/// Pareto's front extraction orders its points with it too).
func stableOrder(_ values: [Double], low: Double, high: Double) -> [Int] {
    let n = values.count
    let range = high - low
    guard n > 1, range > 0, range.isFinite else { return values.indices.sorted { values[$0] < values[$1] } }
    let scale = Double(n) / range
    // Bucket of a value: monotone in the value, so buckets in order hold values in order.
    var bucketOf = [Int](repeating: 0, count: n)
    var starts = [Int](repeating: 0, count: n + 1)
    values.withUnsafeBufferPointer { v in
        for i in 0..<n {
            let position = (v[i] - low) * scale
            let b = position.isNaN ? 0 : Int(min(max(position, 0), Double(n - 1)))
            bucketOf[i] = b
            starts[b + 1] += 1
        }
    }
    for b in 0..<n { starts[b + 1] += starts[b] }
    // Counting sort into buckets keeps index order inside each bucket...
    var order = [Int](repeating: 0, count: n)
    var next = starts
    for i in 0..<n {
        order[next[bucketOf[i]]] = i
        next[bucketOf[i]] += 1
    }
    // ...and a stable insertion sort orders each (small) bucket by value.
    values.withUnsafeBufferPointer { v in
        order.withUnsafeMutableBufferPointer { o in
            for b in 0..<n where starts[b + 1] - starts[b] > 1 {
                for j in (starts[b] + 1)..<starts[b + 1] {
                    let item = o[j], key = v[item]
                    var k = j
                    while k > starts[b] && v[o[k - 1]] > key {
                        o[k] = o[k - 1]
                        k -= 1
                    }
                    o[k] = item
                }
            }
        }
    }
    return order
}
