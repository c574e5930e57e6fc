//! The SIP usage (RFC 7904) over a real overlay: five peers in one process on
//! TLS links over 127.0.0.1, each with a certificate for one user. They register
//! AORs, resolve each other's, forward one AOR to another, loop, get refused by
//! the storing peer when they write another user's AOR, and learn where to open
//! a SIPS connection with AppAttach.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::node_id;

use std::net::SocketAddr;
use std::time::Duration;

use reload_core::Failure;
use reload_core::storage::DomainRestriction;
use reload_net::runtime::{NodeHandle, RequestError};
use reload_sip::gruu::gruu_uri;
use reload_sip::usage::{APP_SIP, APP_SIPS, ResolveError, SIP_REGISTRATION, SipUsage, UsageError, aor_resource};
use reload_trust::{KeyType, TestCa, Validity};
use reload_wire::{
    DataValue, Destination, Encode, ErrorCode, MessageBody, NodeId, SipRegistration, StoreKindData, StoreReq,
    StoredDataValue,
};

const OVERLAY: &str = "sip-usage.example.org";

fn aor(name: &str) -> String {
    format!("{name}@{OVERLAY}")
}

async fn spawn(ca: &TestCa, n: u8, name: &str, bootstrap: Vec<SocketAddr>) -> NodeHandle {
    common::spawn(ca, OVERLAY, n, &aor(name), bootstrap).await.handle
}

fn error_code(e: &UsageError) -> Option<ErrorCode> {
    match e {
        UsageError::Overlay(RequestError::Failed(Failure::Error { error, .. })) => Some(error.error_code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_resolve_forward_and_app_attach_over_a_real_overlay() {
    let test = async {
        let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
        let names = ["alice", "bob", "sam", "carol", "dave"];
        let first = spawn(&ca, 1, names[0], Vec::new()).await;
        first.joined(Duration::from_secs(5)).await.unwrap();
        let boot = vec![first.local_addr()];
        let mut handles = vec![first];
        for (i, name) in names.iter().enumerate().skip(1) {
            let h = spawn(&ca, u8::try_from(i + 1).unwrap(), name, boot.clone()).await;
            h.joined(Duration::from_secs(20)).await.unwrap();
            handles.push(h);
        }
        // Let the ring settle (reactive Updates).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let usages: Vec<SipUsage> = handles
            .iter()
            .map(|h| SipUsage::new(h.clone(), OVERLAY, Vec::new()).unwrap())
            .collect();
        let [alice, bob, sam, carol, dave] = &usages[..] else {
            unreachable!()
        };
        let id = |u: &SipUsage| u.handle().node_id();

        // RFC 7904 §3.1: alice registers her AOR at her node; bob resolves it.
        alice
            .register(&format!("sip:{}", aor("alice")), "(sip.schemes=SIPS)", 600)
            .await
            .unwrap();
        assert_eq!(bob.resolve(&aor("alice")).await.unwrap(), vec![vec![id(alice)]]);
        let routes = carol.resolve_routes(&aor("alice")).await.unwrap();
        assert_eq!(routes.routes.len(), 1);
        assert!(routes.routes[0].prefers_sips());
        assert_eq!(routes.routes[0].target(), Some(id(alice)));

        // A GRUU needs no Fetch (§6).
        let gruu = gruu_uri(&aor("alice"), &[id(alice)]);
        assert_eq!(bob.resolve(&gruu).await.unwrap(), vec![vec![id(alice)]]);

        // Unregistering (a nonexistent value, RFC 6940 §7.4.1.3) leaves nothing.
        alice.unregister(&aor("alice")).await.unwrap();
        assert!(
            matches!(bob.resolve(&aor("alice")).await, Err(ResolveError::NotFound)),
            "alice is still registered"
        );

        // §3.1 second mapping: alice forwards to sam, who is registered at his node.
        sam.register(&aor("sam"), "", 600).await.unwrap();
        alice
            .register_uri(&aor("alice"), &format!("sip:{}", aor("sam")), 600)
            .await
            .unwrap();
        assert_eq!(bob.resolve(&aor("alice")).await.unwrap(), vec![vec![id(sam)]]);
        let via = bob.resolve_routes(&aor("alice")).await.unwrap();
        assert_eq!(via.routes[0].aor, aor("sam"));
        // Two indirections: bob -> alice -> sam.
        bob.register_uri(&aor("bob"), &aor("alice"), 600).await.unwrap();
        assert_eq!(carol.resolve(&aor("bob")).await.unwrap(), vec![vec![id(sam)]]);

        // A loop: carol -> dave -> carol.
        carol.register_uri(&aor("carol"), &aor("dave"), 600).await.unwrap();
        dave.register_uri(&aor("dave"), &aor("carol"), 600).await.unwrap();
        match alice.resolve(&aor("carol")).await {
            Err(ResolveError::Loop(a)) => assert_eq!(a, aor("carol")),
            other => panic!("expected a loop, got {other:?}"),
        }

        // An AOR outside the overlay's domains is reported as external (§4.2 step 3).
        dave.register_uri(&aor("dave"), "sip:dave@elsewhere.example", 600)
            .await
            .unwrap();
        let ext = alice.resolve_routes(&aor("dave")).await.unwrap();
        assert!(ext.routes.is_empty());
        assert_eq!(ext.external, vec!["dave@elsewhere.example".to_owned()]);
        assert!(matches!(
            alice.resolve("sip:x@elsewhere.example").await,
            Err(ResolveError::DomainNotServed(_))
        ));

        // USER-NODE-MATCH (§3.3): dave may not register alice's AOR. The local check
        // says so first ...
        match dave.register(&aor("alice"), "", 600).await {
            Err(UsageError::NotOurUser { aor: a, user }) => {
                assert_eq!(a, aor("alice"));
                assert_eq!(user, Some(aor("dave")));
            }
            other => panic!("expected NotOurUser, got {other:?}"),
        }
        // ... and the storing peer refuses a hand-made Store with Error_Forbidden.
        let resource = aor_resource(&aor("alice"));
        let reg = SipRegistration::route_to_node(Vec::new(), id(dave));
        let value = StoredDataValue::Dictionary {
            key: id(dave).0.to_vec(),
            value: DataValue::new(reg.to_bytes().unwrap()),
        };
        let signed = dave
            .handle()
            .sign_value(&resource, SIP_REGISTRATION, value, 600)
            .unwrap();
        let body = MessageBody::StoreReq(StoreReq {
            resource: resource.clone(),
            replica_number: 0,
            kind_data: vec![StoreKindData {
                kind: SIP_REGISTRATION,
                generation_counter: 0,
                values: vec![signed],
            }],
        });
        match dave.handle().request(Destination::resource(resource), body).await {
            // The answer comes from the peer responsible for alice's Resource-ID
            // (dave itself only if it happens to be that peer): its Store checks.
            Err(RequestError::Failed(Failure::Error { error, .. })) => {
                assert_eq!(error.error_code, ErrorCode::FORBIDDEN, "{error:?}");
            }
            other => panic!("expected Error_Forbidden, got {other:?}"),
        }
        assert_eq!(bob.resolve(&aor("alice")).await.unwrap(), vec![vec![id(sam)]]);

        // A gateway (§3.3): bob's node holds erin's credentials and registers her,
        // signing value and Store as erin; the route leads to bob's node.
        let erin_id = node_id(0xe0);
        let erin_creds = ca
            .issue(
                &[erin_id],
                Some(&aor("erin")),
                KeyType::EcdsaP256,
                Validity::from_now(3600),
            )
            .unwrap();
        let erin = bob.handle().user_signer(erin_creds).unwrap();
        assert_eq!(erin.node_id(), erin_id);
        bob.register_as(&erin, &aor("erin"), "", 600).await.unwrap();
        assert_eq!(carol.resolve(&aor("erin")).await.unwrap(), vec![vec![id(bob)]]);
        assert!(matches!(
            bob.register_as(&erin, &aor("frank"), "", 600).await,
            Err(UsageError::NotOurUser { .. })
        ));
        bob.unregister_as(&erin, &aor("erin")).await.unwrap();
        assert!(matches!(carol.resolve(&aor("erin")).await, Err(ResolveError::NotFound)));

        // RFC 7904 §5.1: AppAttach to the callee's node for SIPS.
        let sips_addr: SocketAddr = "127.0.0.1:45061".parse().unwrap();
        sam.offer(APP_SIPS, sips_addr).await.unwrap();
        assert_eq!(
            alice.connect_addresses(id(sam), APP_SIPS).await.unwrap(),
            vec![sips_addr]
        );
        // Not offered: Error_Not_Found (RFC 6940 §6.5.2.2).
        let not_offered = alice.connect_addresses(id(sam), APP_SIP).await.unwrap_err();
        assert_eq!(error_code(&not_offered), Some(ErrorCode::NOT_FOUND), "{not_offered}");
        let no_app = alice.connect_addresses(id(bob), APP_SIPS).await.unwrap_err();
        assert_eq!(error_code(&no_app), Some(ErrorCode::NOT_FOUND), "{no_app}");
        sam.handle()
            .withdraw_application(reload_wire::ApplicationId::SIPS)
            .await
            .unwrap();
        assert!(alice.connect_addresses(id(sam), APP_SIPS).await.is_err());

        let leaving: Vec<_> = handles
            .into_iter()
            .map(|n| tokio::spawn(async move { n.leave(Duration::from_secs(2)).await }))
            .collect();
        for l in leaving {
            l.await.unwrap().unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test took too long");
}

/// The usage's futures can be spawned on a multi-threaded runtime (a SIP front
/// end runs each lookup in a task of its own).
#[allow(dead_code)]
fn futures_are_send(usage: SipUsage) {
    fn send<T: Send>(_: T) {}
    send(usage.resolve("alice@example.org"));
    send(usage.resolve_routes("alice@example.org"));
    send(usage.register("alice@example.org", "", 60));
    send(usage.register_uri("alice@example.org", "sam@example.org", 60));
    send(usage.unregister("alice@example.org"));
    send(usage.connect_addresses(NodeId([1; 16]), APP_SIPS));
    send(usage.offer(APP_SIP, "127.0.0.1:5060".parse().unwrap()));
}

/// RFC 7904 §3.3: "Before a Store is permitted, the Storing Peer MUST check that
/// the AOR of the request is a valid Resource Name with respect to the namespaces
/// defined in the overlay configuration document". Here the overlay's
/// SIP-REGISTRATION Kind admits `served.example` only (§3.4, `enable="true"`):
/// mallory's AOR in `other.example` matches her certificate (USER-NODE-MATCH holds),
/// and her node skips its own check, but every storing peer refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storing_peers_refuse_aors_of_domains_the_overlay_does_not_serve() {
    let test = async {
        let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
        let patterns = [r"served\.example".to_string()];
        let restriction = DomainRestriction::from_config(Some((true, &patterns)), OVERLAY).unwrap();
        let users = ["alice@served.example", "bob@served.example", "mallory@other.example"];
        let mut handles: Vec<NodeHandle> = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let boot = handles.first().map(|h| vec![h.local_addr()]).unwrap_or_default();
            let n = u8::try_from(i + 1).unwrap();
            let h = common::spawn_restricted(&ca, OVERLAY, n, user, boot, restriction.clone())
                .await
                .handle;
            h.joined(Duration::from_secs(20)).await.unwrap();
            handles.push(h);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let alice = SipUsage::with_restriction(handles[0].clone(), restriction.clone());
        let bob = SipUsage::with_restriction(handles[1].clone(), restriction.clone());
        // Mallory's node does not check the domain itself (§3.3's SHOULD).
        let mallory = SipUsage::with_restriction(handles[2].clone(), DomainRestriction::Any);

        alice.register("alice@served.example", "", 600).await.unwrap();
        assert_eq!(
            bob.resolve("alice@served.example").await.unwrap(),
            vec![vec![alice.handle().node_id()]]
        );
        // Whichever peer is responsible for her Resource-ID refuses the Store.
        let refused = mallory.register("mallory@other.example", "", 600).await.unwrap_err();
        assert_eq!(error_code(&refused), Some(ErrorCode::FORBIDDEN), "{refused:?}");
        // A node that does check refuses before it sends anything.
        assert!(!bob.serves_domain("other.example"));
        assert!(bob.register("bob@other.example", "", 600).await.is_err());
    };
    tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("the test took more than 90 s");
}
