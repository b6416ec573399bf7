import Foundation

extension UUID {
    /// A version-7 UUID (RFC 9562): 48 bits of Unix time in milliseconds, then 74 random bits.
    ///
    /// For ids that become database keys (sagas, events): ids made one after another sort one after another,
    /// so their index entries go to the end of each index (one hot page) instead of a random page each — on the
    /// embedded database a purchase wrote tens of scattered index pages to the WAL, and InnoDB's clustered index
    /// on `sagas.id` splits pages under random keys. 74 random bits keep the ids unguessable; the time in
    /// them is the saga's creation time, which the API shows anyway.
    public static func timeOrdered(at now: Date = Date()) -> UUID {
        var generator = SystemRandomNumberGenerator()
        let milliseconds = UInt64(max(0, (now.timeIntervalSince1970 * 1000).rounded(.down))) & 0xFFFF_FFFF_FFFF
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - i))) }
        bytes[6] = 0x70 | UInt8(truncatingIfNeeded: high & 0x0F)  // version 7
        bytes[7] = UInt8(truncatingIfNeeded: high >> 8)
        bytes[8] = 0x80 | UInt8(truncatingIfNeeded: (high >> 16) & 0x3F)  // variant 10
        for i in 9..<16 { bytes[i] = UInt8(truncatingIfNeeded: low >> (8 * (i - 9))) }
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }
}
