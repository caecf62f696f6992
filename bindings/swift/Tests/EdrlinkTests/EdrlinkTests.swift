// Offline smoke tests for the Swift package (run with `swift test` on an Apple
// host after build-xcframework.sh). Not compiled on the Linux build machines.
import XCTest
@testable import Edrlink

final class EdrlinkTests: XCTestCase {
    func testEnvelopeRoundTrip() throws {
        let seed = Data((0..<32).map { UInt8($0) })
        let pk = try publicKeyFromSeed(seed: seed)
        let env = try sealEnvelope(payloadType: "application/x", payload: Data("hello".utf8), privateKeySeed: seed)
        XCTAssertEqual(try openEnvelope(envelope: env, publicKey: pk, expectedPayloadType: "application/x"), Data("hello".utf8))
        XCTAssertThrowsError(try openEnvelope(envelope: env, publicKey: pk, expectedPayloadType: "application/y")) { error in
            XCTAssertEqual((error as? EdrlinkError)?.code, "wrong_type")
        }
    }

    func testPaeMatchesDsseSpec() {
        XCTAssertEqual(pae(payloadType: "http://example.com/HelloWorld", payload: Data("hello world".utf8)),
                       Data("DSSEv1 29 http://example.com/HelloWorld 11 hello world".utf8))
    }

    func testErrorFieldsOnTheBaseType() {
        XCTAssertThrowsError(try inspectToken(token: "not-a-token")) { error in
            let e = error as? EdrlinkError
            XCTAssertEqual(e?.code, "malformed")
            XCTAssertEqual(e?.number, 100)
            XCTAssertEqual(e?.httpStatus, 400)
            XCTAssertNil(e?.retryAfter ?? nil)
        }
        XCTAssertEqual(clientEventToJson(event: .flowChanged(flow: .blocked)), #"{"type":"flow_changed","flow":"blocked"}"#)
    }

    func testErrorTableAndEicar() {
        XCTAssertEqual(errorCodeInfo(name: "token_expired")?.number, 300)
        XCTAssertEqual(eicarBytes().count, 68)
    }
}
