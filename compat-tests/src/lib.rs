//! Compatibility tests with real Kafka clients live in tests/.
