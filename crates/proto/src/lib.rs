//! Generated code for Tailor's contracts, one module per protobuf package, mirroring
//! `proto/tailor/<area>/v1`. Nothing here is written by hand.
//!
//! Elsewhere, import a package as `use tailor_proto::profile::v1 as pb;`.
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

/// The encoded `FileDescriptorSet` of every Tailor package, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tailor_descriptor");

/// `tailor.common.v1`: money, time ranges.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("tailor.common.v1");
    }
}

/// `tailor.events.v1`: the event envelope and every domain event payload.
pub mod events {
    pub mod v1 {
        tonic::include_proto!("tailor.events.v1");
    }
}

/// `tailor.loadtest.v1`: the echo service the load generator measures the RPC ceiling with.
pub mod loadtest {
    pub mod v1 {
        tonic::include_proto!("tailor.loadtest.v1");
    }
}

/// `tailor.privacy.v1`: the privacy participant contract.
pub mod privacy {
    pub mod v1 {
        tonic::include_proto!("tailor.privacy.v1");
    }
}

/// `tailor.profile.v1`: the profile service.
pub mod profile {
    pub mod v1 {
        tonic::include_proto!("tailor.profile.v1");
    }
}

/// `tailor.mobile.v1`: the mobile app's public API (served by the gateway).
pub mod mobile {
    pub mod v1 {
        tonic::include_proto!("tailor.mobile.v1");
    }
}

/// `tailor.recommend.v1`: the recommend service.
pub mod recommend {
    pub mod v1 {
        tonic::include_proto!("tailor.recommend.v1");
    }
}
