internal import CMariaDB
import Foundation
import NIOPosix
import Synchronization

/// Binds one buffer per column (sized from the result's max lengths) and decodes each fetched row.
struct ResultReader {
    enum Kind { case signed, unsigned, double, decimal, text, bytes, dateTime, null }

    let stmt: UnsafeMutablePointer<MYSQL_STMT>
    let kinds: [Kind]
    let columns: MariaDBColumns
    let count: Int

    init(stmt: UnsafeMutablePointer<MYSQL_STMT>, metadata: UnsafeMutablePointer<MYSQL_RES>) {
        self.stmt = stmt
        count = Int(mysql_num_fields(metadata))
        let fields = mysql_fetch_fields(metadata)!
        columns = MariaDBColumns((0..<count).map { String(cString: fields[$0].name) })
        kinds = (0..<count).map { i in
            let field = fields[i]
            switch field.type {
            case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_INT24, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_YEAR:
                return field.flags & UInt32(UNSIGNED_FLAG) != 0 ? .unsigned : .signed
            case MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE: return .double
            case MYSQL_TYPE_DECIMAL, MYSQL_TYPE_NEWDECIMAL: return .decimal
            case MYSQL_TYPE_DATE, MYSQL_TYPE_DATETIME, MYSQL_TYPE_TIMESTAMP: return .dateTime
            case MYSQL_TYPE_NULL: return .null
            case MYSQL_TYPE_BIT: return .bytes
            default: return field.charsetnr == 63 ? .bytes : .text  // 63 = binary
            }
        }
        maxLengths = (0..<count).map { Int(fields[$0].max_length) }
    }

    private let maxLengths: [Int]

    func readAll() throws -> [MariaDBRow] {
        var binds = Array(repeating: MYSQL_BIND(), count: count)
        let isNull = UnsafeMutablePointer<my_bool>.allocate(capacity: max(count, 1))
        let lengths = UnsafeMutablePointer<UInt>.allocate(capacity: max(count, 1))
        let errors = UnsafeMutablePointer<my_bool>.allocate(capacity: max(count, 1))
        isNull.initialize(repeating: 0, count: max(count, 1))
        lengths.initialize(repeating: 0, count: max(count, 1))
        errors.initialize(repeating: 0, count: max(count, 1))
        var buffers: [UnsafeMutableRawPointer] = []
        defer {
            isNull.deallocate()
            lengths.deallocate()
            errors.deallocate()
            buffers.forEach { $0.deallocate() }
        }
        for i in 0..<count {
            let (type, size): (enum_field_types, Int) = switch kinds[i] {
            case .signed, .unsigned: (MYSQL_TYPE_LONGLONG, 8)
            case .double: (MYSQL_TYPE_DOUBLE, 8)
            case .dateTime: (MYSQL_TYPE_DATETIME, MemoryLayout<MYSQL_TIME>.size)
            case .decimal, .text, .null: (MYSQL_TYPE_STRING, max(maxLengths[i], 1))
            case .bytes: (MYSQL_TYPE_BLOB, max(maxLengths[i], 1))
            }
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            buffers.append(buffer)
            binds[i].buffer_type = type
            binds[i].buffer = buffer
            binds[i].buffer_length = UInt(size)
            binds[i].is_unsigned = kinds[i] == .unsigned ? 1 : 0
            binds[i].is_null = isNull + i
            binds[i].length = lengths + i
            binds[i].error = errors + i
        }
        var rows: [MariaDBRow] = []
        try binds.withUnsafeMutableBufferPointer { binds in
            if count > 0, mysql_stmt_bind_result(stmt, binds.baseAddress) != 0 { throw MariaDBConnection.error(of: stmt) }
            while true {
                let rc = mysql_stmt_fetch(stmt)
                if rc == MYSQL_NO_DATA { break }
                if rc != 0 && rc != MYSQL_DATA_TRUNCATED { throw MariaDBConnection.error(of: stmt) }
                var values: [MariaDBValue] = []
                values.reserveCapacity(count)
                for i in 0..<count {
                    // The length is only meaningful for a non-NULL value (the library may leave it stale).
                    let null = isNull[i] != 0
                    values.append(try value(i, binds: binds, isNull: null, length: null ? 0 : Int(clamping: lengths[i])))
                    lengths[i] = 0
                }
                rows.append(MariaDBRow(columns: columns, values: values))
            }
        }
        return rows
    }

    private func value(_ i: Int, binds: UnsafeMutableBufferPointer<MYSQL_BIND>, isNull: Bool, length: Int) throws -> MariaDBValue {
        if isNull || kinds[i] == .null { return .null }
        let buffer = UnsafeRawPointer(binds[i].buffer!)
        switch kinds[i] {
        case .signed: return .int(buffer.loadUnaligned(as: Int64.self))
        case .unsigned: return .uint(buffer.loadUnaligned(as: UInt64.self))
        case .double: return .double(buffer.loadUnaligned(as: Double.self))
        case .dateTime:
            let t = buffer.loadUnaligned(as: MYSQL_TIME.self)
            return .dateTime(MariaDBDateTime(year: Int(t.year), month: Int(t.month), day: Int(t.day), hour: Int(t.hour),
                                             minute: Int(t.minute), second: Int(t.second), microsecond: Int(t.second_part)))
        case .decimal, .text, .bytes:
            var bytes: [UInt8]
            if length <= Int(binds[i].buffer_length) {
                bytes = Array(UnsafeRawBufferPointer(start: buffer, count: length))
            } else {
                // Longer than the max length reported: fetch this column again into a buffer that fits.
                bytes = [UInt8](repeating: 0, count: length)
                var column = MYSQL_BIND()
                var columnLength: UInt = 0
                let rc = bytes.withUnsafeMutableBytes { whole in
                    column.buffer_type = binds[i].buffer_type
                    column.buffer = whole.baseAddress
                    column.buffer_length = UInt(length)
                    return withUnsafeMutablePointer(to: &columnLength) { lengthPointer in
                        column.length = lengthPointer
                        return mysql_stmt_fetch_column(stmt, &column, UInt32(i), 0)
                    }
                }
                if rc != 0 { throw MariaDBConnection.error(of: stmt) }
            }
            switch kinds[i] {
            case .decimal:
                let text = String(decoding: bytes, as: UTF8.self)
                guard let decimal = MariaDBDecimal(text) else { throw MariaDBError.decoding("not a decimal: \(text)") }
                return .decimal(decimal)
            case .text: return .string(String(decoding: bytes, as: UTF8.self))
            default: return .bytes(bytes)
            }
        case .null: return .null
        }
    }
}
