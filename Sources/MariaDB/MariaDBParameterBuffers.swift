internal import CMariaDB
import Foundation
import NIOPosix
import Synchronization

/// Parameter binds and the memory they point to (freed after execute).
struct ParameterBuffers {
    var binds: [MYSQL_BIND]
    private var allocations: [UnsafeMutableRawPointer] = []

    init(_ values: [MariaDBValue]) {
        binds = Array(repeating: MYSQL_BIND(), count: values.count)
        for (i, value) in values.enumerated() {
            switch value {
            case .null:
                binds[i].buffer_type = MYSQL_TYPE_NULL
            case .int(let n):
                bind(i, MYSQL_TYPE_LONGLONG, scalar: n)
            case .uint(let n):
                bind(i, MYSQL_TYPE_LONGLONG, scalar: n)
                binds[i].is_unsigned = 1
            case .double(let d):
                bind(i, MYSQL_TYPE_DOUBLE, scalar: d)
            case .decimal(let d):
                bind(i, MYSQL_TYPE_NEWDECIMAL, bytes: Array(d.text.utf8))
            case .string(let s):
                bind(i, MYSQL_TYPE_STRING, bytes: Array(s.utf8))
            case .bytes(let b):
                bind(i, MYSQL_TYPE_BLOB, bytes: b)
            case .dateTime(let d):
                var time = MYSQL_TIME()
                time.year = UInt32(d.year)
                time.month = UInt32(d.month)
                time.day = UInt32(d.day)
                time.hour = UInt32(d.hour)
                time.minute = UInt32(d.minute)
                time.second = UInt32(d.second)
                time.second_part = UInt(d.microsecond)
                time.time_type = MYSQL_TIMESTAMP_DATETIME
                bind(i, MYSQL_TYPE_DATETIME, scalar: time)
            }
        }
    }

    private mutating func bind<T>(_ i: Int, _ type: enum_field_types, scalar: T) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        memory.initializeMemory(as: T.self, repeating: scalar, count: 1)
        allocations.append(memory)
        binds[i].buffer_type = type
        binds[i].buffer = memory
        binds[i].buffer_length = UInt(MemoryLayout<T>.size)
    }

    private mutating func bind(_ i: Int, _ type: enum_field_types, bytes: [UInt8]) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        bytes.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(memory), byteCount: bytes.count) }
        let length = UnsafeMutablePointer<UInt>.allocate(capacity: 1)
        length.pointee = UInt(bytes.count)
        allocations.append(memory)
        allocations.append(UnsafeMutableRawPointer(length))
        binds[i].buffer_type = type
        binds[i].buffer = memory
        binds[i].buffer_length = UInt(bytes.count)
        binds[i].length = length
    }

    func free() { allocations.forEach { $0.deallocate() } }
}
