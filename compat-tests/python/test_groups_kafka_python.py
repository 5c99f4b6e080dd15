"""Consumer groups with kafka-python, a pure-Python client with its own protocol code."""
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.structs import TopicPartition


def test_kafka_python_group_consume_commit_and_describe(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("kp", num_partitions=3, replication_factor=1)])
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(300):
        p.send("kp", key=b"k%d" % (i % 10), value=b"v%03d" % i)
    p.flush()
    c = KafkaConsumer("kp", bootstrap_servers=broker.bootstrap, group_id="kpg",
                      auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=5000)
    values = sorted(m.value for m in c)
    assert values == sorted(b"v%03d" % i for i in range(300))
    c.commit()
    c.close()
    offsets = admin.list_group_offsets("kpg")["kpg"]
    assert sum(o.offset for o in offsets.values()) == 300
    groups = {g["group_id"]: g for g in admin.list_groups()}
    assert groups["kpg"]["group_state"] == "Empty"
    assert set(offsets) == {TopicPartition("kp", i) for i in range(3)}
