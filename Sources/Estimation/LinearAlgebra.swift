// Small dense linear algebra for the predictors (matrices of at most a few hundred rows).
//
// Pure Swift on purpose: LAPACK is not guaranteed to be installed on the edge boards and build
// machines EdgeNAS targets, and at these sizes O(n^3) loops finish in milliseconds.
import Foundation
import LinearAlgebra

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

    init(rows: Int, columns: Int, values: [Double]) {
        precondition(values.count == rows * columns, "matrix values do not fit its shape")
        self.rows = rows
        self.columns = columns
        self.values = values
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
    case notPositiveDefinite
}

/// Lower-triangular Cholesky factor L with A = L L^T.
struct CholeskyFactor: Sendable {
    var lower: Matrix

    /// Wraps an already computed factor.
    init(lower: Matrix) {
        self.lower = lower
    }

    init(_ a: Matrix) throws {
        guard a.values.allSatisfy(\.isFinite), let lower = choleskyFactor(a.values, n: a.rows) else {
            throw LinearAlgebraError.notPositiveDefinite
        }
        self.lower = Matrix(rows: a.rows, columns: a.rows, values: lower)
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

    /// Solves A x = b.
    func solve(_ b: [Double]) -> [Double] { choleskySolve(lower.values, b, n: lower.rows) }

    /// log det A = 2 sum log L_ii.
    var logDeterminant: Double {
        var s = 0.0
        for i in 0..<lower.rows { s += log(lower[i, i]) }
        return 2 * s
    }

    /// A^{-1}.
    var inverse: Matrix { Matrix(rows: lower.rows, columns: lower.rows, values: choleskyInverse(lower.values, n: lower.rows)) }
}

extension SymmetricEigen {
    init(_ matrix: Matrix) { self.init(matrix.values, n: matrix.rows) }
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
