import Foundation
import Testing
@testable import VSecureCrypto

@Suite("LocalIdentity: the actor of a local operation")
struct LocalIdentityTests {
    static let passwd = Array("""
        root:x:0:0:root:/root:/bin/bash
        +nis:x:1000:1000::/:/bin/sh
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        broken line without fields
        :x:77:77::/:/bin/sh
        app:x:1000:1000:App,,,:/home/app:/bin/sh
        app2:x:10000:10000::/home/app2:/bin/sh
        """.utf8)

    @Test("a uid's name comes from the first line whose third field is exactly that uid")
    func parsesPasswd() {
        #expect(LocalIdentity.passwdName(uid: 0, in: Self.passwd[...]) == "root")
        #expect(LocalIdentity.passwdName(uid: 1000, in: Self.passwd[...]) == "app", "NIS compat lines (+, -) are not names")
        #expect(LocalIdentity.passwdName(uid: 10000, in: Self.passwd[...]) == "app2")
        #expect(LocalIdentity.passwdName(uid: 100, in: Self.passwd[...]) == nil, "no prefix match on 10000 or 1000")
        #expect(LocalIdentity.passwdName(uid: 77, in: Self.passwd[...]) == nil, "an empty name is no name")
        #expect(LocalIdentity.passwdName(uid: 0, in: []) == nil)
    }

    @Test("a passwd file is read whole: the uid's name from it, nil without the uid or the file")
    func readsAFile() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path + "/passwd"
        try Data(Self.passwd).write(to: URL(fileURLWithPath: path))
        #expect(LocalIdentity.passwdFileName(uid: 10000, path: path) == "app2")
        #expect(LocalIdentity.passwdFileName(uid: 4242, path: path) == nil)
        #expect(LocalIdentity.passwdFileName(uid: 0, path: scratch.path + "/missing") == nil)
        #expect(LocalIdentity.passwdFileName(uid: 0, path: scratch.path) == nil, "a directory is not read")
    }

    @Test("read from this machine's /etc/passwd, the name is the one the C library's password database gives")
    func agreesWithGetpwuid() throws {
        let uid = geteuid()
        let text = try String(contentsOfFile: "/etc/passwd", encoding: .utf8)
        try #require(text.split(separator: "\n").contains { $0.split(separator: ":", omittingEmptySubsequences: false).dropFirst(2).first == Substring(String(uid)) },
                     "this machine's /etc/passwd names uid \(uid)")
        let expected = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } }
        #expect(LocalIdentity.passwdFileName(uid: uid) == expected)
    }
}
