// Small dense linear algebra for the predictors (matrices of at most a few hundred rows).
//
// Pure Swift on purpose: LAPACK is not guaranteed to be installed on the edge boards and build
// machines EdgeNAS targets, and at these sizes O(n^3) loops finish in milliseconds.
import Foundation

/// Row-major dense matrix.
struct Matrix: Sendable, Hashable {
    var rows: Int
    var columns: Int
    var values: [Double]

    init(rows: Int, columns: Int, repeating value: Double = 0) {
        self.rows = rows
        self.columns = columns
        values = [Double](repeating: value, count: rows * columns)
    }

    init(_ rowArrays: [[Double]]) {
        rows = rowArrays.count
        columns = rowArrays.first?.count ?? 0
        values = rowArrays.flatMap { $0 }
    }

    static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, columns: n)
        for i in 0..<n { m[i, i] = 1 }
        return m
    }

    subscript(row: Int, column: Int) -> Double {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    func row(_ i: Int) -> [Double] { Array(values[(i * columns)..<((i + 1) * columns)]) }

    var transposed: Matrix {
        var t = Matrix(rows: columns, columns: rows)
        for i in 0..<rows { for j in 0..<columns { t[j, i] = self[i, j] } }
        return t
    }

    static func * (a: Matrix, b: Matrix) -> Matrix {
        precondition(a.columns == b.rows, "matrix product shape mismatch")
        var c = Matrix(rows: a.rows, columns: b.columns)
        for i in 0..<a.rows {
            for k in 0..<a.columns {
                let aik = a[i, k]
                if aik == 0 { continue }
                for j in 0..<b.columns { c.values[i * c.columns + j] += aik * b.values[k * b.columns + j] }
            }
        }
        return c
    }

    func times(_ v: [Double]) -> [Double] {
        precondition(columns == v.count, "matrix-vector shape mismatch")
        var out = [Double](repeating: 0, count: rows)
        for i in 0..<rows {
            var s = 0.0
            for j in 0..<columns { s += values[i * columns + j] * v[j] }
            out[i] = s
        }
        return out
    }

    /// A^T A (Gram matrix of the columns).
    var gram: Matrix {
        var g = Matrix(rows: columns, columns: columns)
        for r in 0..<rows {
            for i in 0..<columns {
                let a = values[r * columns + i]
                if a == 0 { continue }
                for j in i..<columns { g.values[i * columns + j] += a * values[r * columns + j] }
            }
        }
        for i in 0..<columns { for j in 0..<i { g[i, j] = g[j, i] } }
        return g
    }

    /// A^T v.
    func transposeTimes(_ v: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: columns)
        for r in 0..<rows where v[r] != 0 {
            for j in 0..<columns { out[j] += values[r * columns + j] * v[r] }
        }
        return out
    }
}

enum LinearAlgebraError: Error, Equatable {
    /// Cholesky met a non-positive pivot: the matrix is not (numerically) positive definite.
    case notPositiveDefinite(pivot: Int)
}

/// Lower-triangular Cholesky factor L with A = L L^T.
struct CholeskyFactor: Sendable {
    var lower: Matrix

    /// Wraps an already computed factor.
    init(lower: Matrix) {
        self.lower = lower
    }

    init(_ a: Matrix) throws {
        let n = a.rows
        var l = Matrix(rows: n, columns: n)
        for j in 0..<n {
            var d = a[j, j]
            for k in 0..<j { d -= l[j, k] * l[j, k] }
            guard d > 0, d.isFinite else { throw LinearAlgebraError.notPositiveDefinite(pivot: j) }
            let djj = d.squareRoot()
            l[j, j] = djj
            for i in (j + 1)..<max(j + 1, n) {
                var s = a[i, j]
                for k in 0..<j { s -= l[i, k] * l[j, k] }
                l[i, j] = s / djj
            }
        }
        lower = l
    }

    /// Solves L z = b.
    func solveLower(_ b: [Double]) -> [Double] {
        let n = lower.rows
        var z = b
        for i in 0..<n {
            var s = z[i]
            for k in 0..<i { s -= lower[i, k] * z[k] }
            z[i] = s / lower[i, i]
        }
        return z
    }

    /// Solves L^T x = z.
    func solveUpper(_ z: [Double]) -> [Double] {
        let n = lower.rows
        var x = z
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = x[i]
            for k in (i + 1)..<max(i + 1, n) { s -= lower[k, i] * x[k] }
            x[i] = s / lower[i, i]
        }
        return x
    }

    /// Solves A x = b.
    func solve(_ b: [Double]) -> [Double] { solveUpper(solveLower(b)) }

    /// log det A = 2 sum log L_ii.
    var logDeterminant: Double {
        var s = 0.0
        for i in 0..<lower.rows { s += log(lower[i, i]) }
        return 2 * s
    }

    /// A^{-1}, column by column.
    var inverse: Matrix {
        let n = lower.rows
        var inv = Matrix(rows: n, columns: n)
        for j in 0..<n {
            var e = [Double](repeating: 0, count: n)
            e[j] = 1
            let col = solve(e)
            for i in 0..<n { inv[i, j] = col[i] }
        }
        return inv
    }
}

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: A = V diag(values) V^T.
/// Jacobi is slow for large n but accurate for small ones, and needs no external library.
struct SymmetricEigen: Sendable {
    var values: [Double]
    /// Eigenvectors in columns.
    var vectors: Matrix

    init(_ input: Matrix, maxSweeps: Int = 100) {
        let n = input.rows
        var a = input
        var v = Matrix.identity(n)
        for _ in 0..<maxSweeps {
            var off = 0.0, scale = 0.0
            for i in 0..<n {
                scale += a[i, i] * a[i, i]
                for j in (i + 1)..<max(i + 1, n) { off += a[i, j] * a[i, j] }
            }
            if off <= 1e-30 * max(scale, 1e-300) { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) {
                    let apq = a[p, q]
                    if abs(apq) < 1e-300 { continue }
                    let theta = (a[q, q] - a[p, p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k, p], akq = a[k, q]
                        a[k, p] = c * akp - s * akq
                        a[k, q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p, k], aqk = a[q, k]
                        a[p, k] = c * apk - s * aqk
                        a[q, k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k, p], vkq = v[k, q]
                        v[k, p] = c * vkp - s * vkq
                        v[k, q] = s * vkp + c * vkq
                    }
                }
            }
        }
        values = (0..<n).map { a[$0, $0] }
        vectors = v
    }

    /// V diag(f(lambda)) V^T applied to b, i.e. a spectral function of A times b.
    func apply(_ b: [Double], _ f: (Double) -> Double) -> [Double] {
        let n = values.count
        var projected = [Double](repeating: 0, count: n)
        for k in 0..<n {
            var s = 0.0
            for i in 0..<n { s += vectors[i, k] * b[i] }
            projected[k] = s * f(values[k])
        }
        var out = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var s = 0.0
            for k in 0..<n { s += vectors[i, k] * projected[k] }
            out[i] = s
        }
        return out
    }
}

/// Minimiser for a few smooth parameters without gradients (Nelder & Mead 1965, standard
/// reflection/expansion/contraction/shrink coefficients). Used for GP hyper-parameters in log space.
func nelderMeadMinimize(_ f: ([Double]) -> Double, start: [Double], step: Double = 0.5,
                        maxEvaluations: Int = 2000, tolerance: Double = 1e-8) -> (point: [Double], value: Double) {
    let d = start.count
    var simplex: [[Double]] = [start]
    for i in 0..<d {
        var p = start
        p[i] += step
        simplex.append(p)
    }
    func safe(_ p: [Double]) -> Double {
        let v = f(p)
        return v.isFinite ? v : .greatestFiniteMagnitude
    }
    var fv = simplex.map(safe)
    var evaluations = d + 1
    while evaluations < maxEvaluations {
        let order = (0...d).sorted { fv[$0] < fv[$1] }
        simplex = order.map { simplex[$0] }
        fv = order.map { fv[$0] }
        if abs(fv[d] - fv[0]) <= tolerance * (abs(fv[0]) + tolerance) { break }
        var centroid = [Double](repeating: 0, count: d)
        for i in 0..<d { for k in 0..<d { centroid[k] += simplex[i][k] / Double(d) } }
        func along(_ t: Double) -> [Double] { (0..<d).map { centroid[$0] + t * (simplex[d][$0] - centroid[$0]) } }
        let reflected = along(-1)
        let fr = safe(reflected); evaluations += 1
        if fr < fv[0] {
            let expanded = along(-2)
            let fe = safe(expanded); evaluations += 1
            if fe < fr { simplex[d] = expanded; fv[d] = fe } else { simplex[d] = reflected; fv[d] = fr }
        } else if fr < fv[d - 1] {
            simplex[d] = reflected; fv[d] = fr
        } else {
            let contracted = fr < fv[d] ? along(-0.5) : along(0.5)
            let fc = safe(contracted); evaluations += 1
            if fc < min(fr, fv[d]) {
                simplex[d] = contracted; fv[d] = fc
            } else {
                for i in 1...d {
                    simplex[i] = (0..<d).map { simplex[0][$0] + 0.5 * (simplex[i][$0] - simplex[0][$0]) }
                    fv[i] = safe(simplex[i]); evaluations += 1
                }
            }
        }
    }
    let best = (0...d).min { fv[$0] < fv[$1] }!
    return (simplex[best], fv[best])
}
