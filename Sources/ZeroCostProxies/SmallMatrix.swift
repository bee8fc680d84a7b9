// Dense linear algebra on the N x N matrices of the proxies (N = minibatch size, a few dozen).
import Foundation
import LinearAlgebra

enum SmallMatrix {
    /// Pearson correlation matrix of the rows (each row one variable), like numpy.corrcoef.
    /// A constant row gives NaN entries, as numpy does.
    static func correlation(_ rows: [[Double]]) -> [[Double]] {
        let centred = rows.map { row -> [Double] in
            let mean = row.reduce(0, +) / Double(row.count)
            return row.map { $0 - mean }
        }
        let norms = centred.map { $0.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        return centred.indices.map { i in
            centred.indices.map { j in
                let dot = zip(centred[i], centred[j]).reduce(0) { $0 + $1.0 * $1.1 }
                // numpy clips to [-1, 1] after dividing by the standard deviations.
                return Swift.min(1, Swift.max(-1, dot / (norms[i] * norms[j])))
            }
        }
    }

    /// Eigenvalues of a symmetric matrix (ascending order).
    static func symmetricEigenvalues(_ matrix: [[Double]]) -> [Double] {
        SymmetricEigen(matrix.flatMap { $0 }, n: matrix.count).values.sorted()
    }

    /// log |det A| by LU decomposition with partial pivoting (-inf for a singular matrix),
    /// like numpy.linalg.slogdet's second value.
    static func logAbsDeterminant(_ matrix: [[Double]]) -> Double {
        var a = matrix
        let n = a.count
        var result = 0.0
        for column in 0..<n {
            var pivot = column
            for row in column..<n where Swift.abs(a[row][column]) > Swift.abs(a[pivot][column]) { pivot = row }
            guard a[pivot][column] != 0 else { return -.infinity }
            a.swapAt(column, pivot)
            result += Foundation.log(Swift.abs(a[column][column]))
            for row in (column + 1)..<max(column + 1, n) {
                let factor = a[row][column] / a[column][column]
                for k in column..<n { a[row][k] -= factor * a[column][k] }
            }
        }
        return result
    }
}
