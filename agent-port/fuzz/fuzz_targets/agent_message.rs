//! An `AgentMessage` as the collector receives it on the Connect stream:
//! arbitrary bytes decoded with prost, and a decoded `Batch` run through
//! `validate_batch`. Nothing may panic, and what validation returns must
//! account for the batch it was given.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use outpost_agent_port::validate::{BatchError, validate_batch};
use outpost_proto::MAX_BATCH_OBSERVATIONS;
use outpost_proto::agent_v1::{AgentMessage, agent_message};
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = AgentMessage::decode(data) else {
        return;
    };
    // Whatever decodes re-encodes to bytes that decode to the same message
    // (compared as bytes: a NaN metric value is not equal to itself).
    let encoded = message.encode_to_vec();
    let again = AgentMessage::decode(encoded.as_slice()).expect("a re-encoded message decodes");
    assert_eq!(again.encode_to_vec(), encoded, "re-encoding is not stable");

    let Some(agent_message::Kind::Batch(batch)) = message.kind else {
        return;
    };
    let count = batch.observations.len();
    let seqs: HashSet<u64> = batch.observations.iter().map(|o| o.seq).collect();
    let scope = outpost_agent_port_fuzz::scope();

    let validated = match validate_batch(&scope, batch) {
        Ok(validated) => validated,
        Err(BatchError::Empty) => {
            assert_eq!(count, 0, "a batch of {count} observations refused as empty");
            return;
        }
        Err(BatchError::TooLarge(n)) => {
            assert_eq!(n, count);
            assert!(
                count > MAX_BATCH_OBSERVATIONS,
                "a batch of {count} refused as too large"
            );
            return;
        }
    };
    assert!(count > 0 && count <= MAX_BATCH_OBSERVATIONS);

    for rejection in &validated.rejected {
        assert!(
            seqs.contains(&rejection.seq),
            "rejected seq {} is not in the batch",
            rejection.seq
        );
        assert!(
            !rejection.reason.is_empty(),
            "rejection of seq {} has no reason",
            rejection.seq
        );
    }
    let through = validated.batch.through_seq;
    let stored = validated
        .batch
        .metrics
        .iter()
        .map(|m| m.seq)
        .chain(validated.batch.host_facts.iter().map(|h| h.seq))
        .chain(validated.batch.devices.iter().map(|d| d.seq))
        .chain(validated.backups.iter().map(|b| b.seq))
        .chain(validated.batch.discovery.iter().map(|d| d.seq));
    for seq in stored {
        let seq_u64 = u64::try_from(seq).unwrap_or_else(|_| panic!("stored seq {seq} is negative"));
        assert!(seq_u64 != 0, "stored seq 0");
        assert!(seqs.contains(&seq_u64), "stored seq {seq} is not in the batch");
        assert!(through >= seq, "through_seq {through} is below stored seq {seq}");
    }
    for metric in &validated.batch.metrics {
        assert!(!metric.name.is_empty(), "stored a metric with no name");
        assert!(metric.value.is_finite(), "stored a non-finite value {}", metric.value);
    }
    // Every observation is either stored or rejected, never both or neither.
    assert_eq!(
        validated.batch.metrics.len()
            + validated.batch.host_facts.len()
            + validated.batch.devices.len()
            + validated.backups.len()
            + validated.batch.discovery.len()
            + validated.rejected.len(),
        count,
        "stored plus rejected does not add up to the batch"
    );
});
