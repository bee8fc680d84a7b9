// Eigen-decomposition of small symmetric matrices, for the predictors' ridge regressions and the
// zero-cost proxies' spectra.

/// A = V diag(values) V^T by cyclic Jacobi rotations (Golub and Van Loan, Algorithm 8.4.1).
/// Jacobi is slow for large n but accurate for small ones, and needs no external library
/// (LAPACK is not guaranteed on the boards and build machines EdgeNAS targets).
public struct SymmetricEigen: Sendable {
    public let n: Int
    /// Eigenvalues, in the order of the eigenvector columns (not sorted).
    public var values: [Double]
    /// Eigenvectors in columns, row-major n x n.
    public var vectors: [Double]

    /// `a`: a symmetric n x n matrix, row-major.
    public init(_ a: [Double], n: Int, maxSweeps: Int = 100) {
        precondition(a.count == n * n, "SymmetricEigen needs an n x n matrix")
        self.n = n
        var a = a
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<maxSweeps {
            var off = 0.0, scale = 0.0
            for i in 0..<n {
                scale += a[i * n + i] * a[i * n + i]
                for j in (i + 1)..<max(i + 1, n) { off += a[i * n + j] * a[i * n + j] }
            }
            if off <= 1e-30 * max(scale, 1e-300) { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) {
                    let apq = a[p * n + q]
                    if abs(apq) < 1e-300 { continue }
                    // The rotation that zeroes a[p][q].
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        values = (0..<n).map { a[$0 * n + $0] }
        vectors = v
    }

    /// Component `row` of eigenvector `column`.
    public func vector(_ row: Int, _ column: Int) -> Double { vectors[row * n + column] }

    /// V diag(f(lambda)) V^T applied to b, i.e. a spectral function of A times b.
    public func apply(_ b: [Double], _ f: (Double) -> Double) -> [Double] {
        var projected = [Double](repeating: 0, count: n)
        for k in 0..<n {
            var s = 0.0
            for i in 0..<n { s += vector(i, k) * b[i] }
            projected[k] = s * f(values[k])
        }
        var out = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var s = 0.0
            for k in 0..<n { s += vector(i, k) * projected[k] }
            out[i] = s
        }
        return out
    }
}
