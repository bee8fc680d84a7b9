// Dense Cholesky factorisation and triangular solves on row-major [Double], in SIMD blocks:
// the Gaussian processes of the samplers and of the performance predictors run on these.

/// Overwrites the n x width block `v` (row-major, width a multiple of 4) with L^-1 v, L
/// lower triangular (row-major n x n), and adds each column's squared norm to
/// `squaredNorms`. Row i is v_i = (v_i - sum_j<i L_ij v_j) / L_ii, summed in j order as a
/// row-by-row solve would, but four rows at a time over four columns at a time: each
/// loaded v_j feeds four rows, where the row-by-row solve reloaded it for every row and
/// was bound by memory traffic (the GP's acquisition spends most of its time here).
public func forwardSubstitution(_ l: UnsafeBufferPointer<Double>, n: Int, _ v: UnsafeMutablePointer<Double>, width: Int, squaredNorms: UnsafeMutablePointer<Double>) {
    precondition(width % 4 == 0, "width must be a multiple of 4")
    let raw = UnsafeMutableRawPointer(v), rawSquared = UnsafeMutableRawPointer(squaredNorms)
    @inline(__always) func load(_ row: Int, _ c: Int) -> SIMD4<Double> {
        raw.loadUnaligned(fromByteOffset: (row &* width &+ c) &* 8, as: SIMD4<Double>.self)
    }
    @inline(__always) func store(_ value: SIMD4<Double>, _ row: Int, _ c: Int) {
        raw.storeBytes(of: value, toByteOffset: (row &* width &+ c) &* 8, as: SIMD4<Double>.self)
    }
    @inline(__always) func addSquare(_ value: SIMD4<Double>, _ c: Int) {
        let total = rawSquared.loadUnaligned(fromByteOffset: c &* 8, as: SIMD4<Double>.self)
        rawSquared.storeBytes(of: total + value * value, toByteOffset: c &* 8, as: SIMD4<Double>.self)
    }
    @inline(__always) func minus(_ i: Int, _ j: Int) -> SIMD4<Double> { SIMD4(repeating: -l[i &* n &+ j]) }
    @inline(__always) func diagonal(_ i: Int) -> SIMD4<Double> { SIMD4(repeating: l[i &* n &+ i]) }
    var i0 = 0
    while i0 &+ 4 <= n {
        let (i1, i2, i3) = (i0 &+ 1, i0 &+ 2, i0 &+ 3)
        for c in stride(from: 0, to: width, by: 4) {
            var v0 = load(i0, c), v1 = load(i1, c), v2 = load(i2, c), v3 = load(i3, c)
            for j in 0..<i0 {
                let vj = load(j, c)
                v0 = v0 + minus(i0, j) * vj
                v1 = v1 + minus(i1, j) * vj
                v2 = v2 + minus(i2, j) * vj
                v3 = v3 + minus(i3, j) * vj
            }
            // The block's own triangle, in the same j order.
            v0 = v0 / diagonal(i0)
            v1 = (v1 + minus(i1, i0) * v0) / diagonal(i1)
            v2 = (v2 + minus(i2, i0) * v0 + minus(i2, i1) * v1) / diagonal(i2)
            v3 = (v3 + minus(i3, i0) * v0 + minus(i3, i1) * v1 + minus(i3, i2) * v2) / diagonal(i3)
            store(v0, i0, c); store(v1, i1, c); store(v2, i2, c); store(v3, i3, c)
            addSquare(v0, c); addSquare(v1, c); addSquare(v2, c); addSquare(v3, c)
        }
        i0 &+= 4
    }
    for i in i0..<n {
        for c in stride(from: 0, to: width, by: 4) {
            var vi = load(i, c)
            for j in 0..<i { vi = vi + minus(i, j) * load(j, c) }
            vi = vi / diagonal(i)
            store(vi, i, c)
            addSquare(vi, c)
        }
    }
}

/// Lower Cholesky factor of a symmetric matrix (row-major), nil if not positive definite.
/// Right-looking, on the upper triangle: after column k is scaled, row i of the trailing
/// block loses U[k][i] * U[k][i...], an update over contiguous memory that vectorises.
/// The GP factorises once per optimiser step and once per model, so this dominates.
public func choleskyFactor(_ a: [Double], n: Int) -> [Double]? {
    var u = a // upper triangle of each row i (columns i...) is the working matrix
    let ok = u.withUnsafeMutableBufferPointer { u -> Bool in
        for k in 0..<n {
            let rowK = k * n
            let pivot = u[rowK + k]
            guard pivot > 0 else { return false }
            let diagonal = pivot.squareRoot()
            u[rowK + k] = diagonal
            let scale = 1 / diagonal
            for j in (k + 1)..<max(n, k + 1) { u[rowK + j] *= scale }
            let base = u.baseAddress!
            for i in (k + 1)..<max(n, k + 1) {
                let factor = u[rowK + i]
                if factor == 0 { continue }
                axpy(-factor, base + rowK + i, base + i * n + i, n - i)
            }
        }
        return true
    }
    guard ok else { return nil }
    // L = U^T.
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0...i { l[i * n + j] = u[j * n + i] } }
    return l
}

/// y[0..<count] += a * x[0..<count], in SIMD blocks (the GP's linear algebra runs on this).
@inlinable
public func axpy(_ a: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ count: Int) {
    var c = 0
    let a4 = SIMD4<Double>(repeating: a)
    let rawX = UnsafeRawPointer(x), rawY = UnsafeMutableRawPointer(y)
    while c &+ 4 <= count {
        let xs = rawX.loadUnaligned(fromByteOffset: c &* 8, as: SIMD4<Double>.self)
        let ys = rawY.loadUnaligned(fromByteOffset: c &* 8, as: SIMD4<Double>.self)
        rawY.storeBytes(of: ys + a4 * xs, toByteOffset: c &* 8, as: SIMD4<Double>.self)
        c &+= 4
    }
    while c < count {
        y[c] += a * x[c]
        c &+= 1
    }
}

/// Solves (L L^T) x = b.
public func choleskySolve(_ l: [Double], _ b: [Double], n: Int) -> [Double] {
    var z = b
    for i in 0..<n {
        var s = z[i]
        for k in 0..<i { s -= l[i * n + k] * z[k] }
        z[i] = s / l[i * n + i]
    }
    for i in stride(from: n - 1, through: 0, by: -1) {
        var s = z[i]
        for k in (i + 1)..<max(n, i + 1) { s -= l[k * n + i] * z[k] }
        z[i] = s / l[i * n + i]
    }
    return z
}

/// (L L^T)^-1 = L^-T L^-1, from the inverse of L, both built row by row.
public func choleskyInverse(_ l: [Double], n: Int) -> [Double] {
    var inverseL = [Double](repeating: 0, count: n * n)
    var result = [Double](repeating: 0, count: n * n)
    var accumulator = [Double](repeating: 0, count: n)
    l.withUnsafeBufferPointer { l in
        inverseL.withUnsafeMutableBufferPointer { inv in
            accumulator.withUnsafeMutableBufferPointer { acc in
                // Row i of L^-1: inv[i][j] = -(sum_k L[i][k] inv[k][j]) / L[i][i] for j < i.
                for i in 0..<n {
                    for j in 0..<i { acc[j] = 0 }
                    for k in 0..<i {
                        let a = l[i * n + k]
                        if a == 0 { continue }
                        axpy(a, inv.baseAddress! + k * n, acc.baseAddress!, k + 1)
                    }
                    let diagonal = l[i * n + i]
                    for j in 0..<i { inv[i * n + j] = -acc[j] / diagonal }
                    inv[i * n + i] = 1 / diagonal
                }
            }
            result.withUnsafeMutableBufferPointer { out in
                // out[i][j] = sum_k inv[k][i] inv[k][j] (k >= max(i, j)); lower half, then mirror.
                for k in 0..<n {
                    let rowK = k * n
                    for i in 0...k {
                        let a = inv[rowK + i]
                        if a == 0 { continue }
                        axpy(a, inv.baseAddress! + rowK, out.baseAddress! + i * n, i + 1)
                    }
                }
                for i in 0..<n { for j in 0..<i { out[j * n + i] = out[i * n + j] } }
            }
        }
    }
    return result
}
