package dev.oxbow.compat;

import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The AdminClient against the real broker, as kafka-topics.sh and kafka-configs.sh use it. */
@Timeout(120)
class AdminTest {
  OxbowBroker broker;
  Admin admin;

  @BeforeEach
  void start() throws Exception {
    broker = new OxbowBroker();
    admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap));
  }

  @AfterEach
  void stop() {
    admin.close(Duration.ofSeconds(5));
    broker.close();
  }

  static <T extends Throwable> T cause(Class<T> type, Executable e) {
    ExecutionException ex = assertThrows(ExecutionException.class, e::run);
    assertInstanceOf(type, ex.getCause(), () -> "got " + ex.getCause());
    return type.cast(ex.getCause());
  }

  interface Executable {
    void run() throws Exception;
  }

  void produce(String topic, int partition, int n) throws Exception {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
      for (int i = 0; i < n; i++) producer.send(new ProducerRecord<>(topic, partition, "k", "v" + i));
      producer.flush();
    }
  }

  @Test
  void topicLifecycleAndConfigs() throws Exception {
    NewTopic t = new NewTopic("admin-t", 3, (short) 1).configs(Map.of("retention.ms", "3600000", "cleanup.policy", "delete"));
    admin.createTopics(List.of(t), new CreateTopicsOptions().validateOnly(true)).all().get();
    assertFalse(admin.listTopics().names().get().contains("admin-t"), "validateOnly created the topic");
    CreateTopicsResult created = admin.createTopics(List.of(t));
    created.all().get();
    assertEquals(3, created.numPartitions("admin-t").get());
    assertNotNull(created.topicId("admin-t").get());
    cause(TopicExistsException.class, () -> admin.createTopics(List.of(t)).all().get());
    cause(InvalidConfigurationException.class, () -> admin.createTopics(List.of(
        new NewTopic("bad-config", 1, (short) 1).configs(Map.of("retention.ms", "soon")))).all().get());

    assertTrue(admin.listTopics().names().get().contains("admin-t"));
    TopicDescription d = admin.describeTopics(List.of("admin-t")).allTopicNames().get().get("admin-t");
    assertEquals(3, d.partitions().size());
    assertEquals(1, d.partitions().get(0).replicas().size());

    ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, "admin-t");
    Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
    assertEquals("3600000", cfg.get("retention.ms").value());
    assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, cfg.get("retention.ms").source());
    assertFalse(cfg.get("retention.ms").isDefault());
    assertEquals("1073741824", cfg.get("segment.bytes").value());
    assertTrue(cfg.get("segment.bytes").isDefault());

    admin.incrementalAlterConfigs(Map.of(res, List.of(
        new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
        new AlterConfigOp(new ConfigEntry("max.message.bytes", "2000000"), AlterConfigOp.OpType.SET)))).all().get();
    cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
    assertEquals("7200000", cfg.get("retention.ms").value());
    assertEquals("2000000", cfg.get("max.message.bytes").value());
    admin.incrementalAlterConfigs(Map.of(res, List.of(
        new AlterConfigOp(new ConfigEntry("max.message.bytes", ""), AlterConfigOp.OpType.DELETE)))).all().get();
    cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
    assertTrue(cfg.get("max.message.bytes").isDefault());

    ConfigResource brokerRes = new ConfigResource(ConfigResource.Type.BROKER, "1");
    Config brokerCfg = admin.describeConfigs(List.of(brokerRes)).all().get().get(brokerRes);
    assertEquals("1", brokerCfg.get("num.partitions").value());
    assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, brokerCfg.get("num.partitions").source());
    assertEquals(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, brokerCfg.get("group.initial.rebalance.delay.ms").source());

    admin.createPartitions(Map.of("admin-t", NewPartitions.increaseTo(5))).all().get();
    assertEquals(5, admin.describeTopics(List.of("admin-t")).allTopicNames().get().get("admin-t").partitions().size());

    // Metadata and configs survive a restart.
    broker.restart();
    admin.close(Duration.ofSeconds(5));
    admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap));
    assertEquals(5, admin.describeTopics(List.of("admin-t")).allTopicNames().get().get("admin-t").partitions().size());
    assertEquals("7200000", admin.describeConfigs(List.of(res)).all().get().get(res).get("retention.ms").value());

    admin.deleteTopics(List.of("admin-t")).all().get();
    assertFalse(admin.listTopics().names().get().contains("admin-t"));
    cause(UnknownTopicOrPartitionException.class, () -> admin.deleteTopics(List.of("admin-t")).all().get());

    DescribeClusterResult cluster = admin.describeCluster();
    assertEquals(1, cluster.nodes().get().size());
    assertEquals(broker.bootstrap, cluster.nodes().get().iterator().next().host() + ":" + cluster.nodes().get().iterator().next().port());
    assertNotNull(cluster.clusterId().get());
  }

  @Test
  void deleteRecordsMovesTheLogStart() throws Exception {
    admin.createTopics(List.of(new NewTopic("trim", 1, (short) 1))).all().get();
    produce("trim", 0, 50);
    TopicPartition tp = new TopicPartition("trim", 0);
    DeletedRecords deleted = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(20))).lowWatermarks().get(tp).get();
    assertEquals(20, deleted.lowWatermark());
    assertEquals(20, admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all().get().get(tp).offset());
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
      consumer.assign(List.of(tp));
      consumer.seekToBeginning(List.of(tp));
      assertEquals(20L, consumer.beginningOffsets(List.of(tp)).get(tp));
      ConsumerRecord<String, String> first = null;
      long deadline = System.currentTimeMillis() + 20_000;
      while (first == null && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
          if (first == null) first = r;
        }
      }
      assertNotNull(first);
      assertEquals(20, first.offset());
      assertEquals("v20", first.value());
    }
  }

  @Test
  void brokerAndInheritedTopicConfigsReportTheirSource() throws Exception {
    admin.close(Duration.ofSeconds(5));
    broker.close();
    broker = new OxbowBroker("log.retention.hours=48");
    admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap));

    ConfigResource brokerRes = new ConfigResource(ConfigResource.Type.BROKER, "1");
    Config brokerCfg = admin.describeConfigs(List.of(brokerRes)).all().get().get(brokerRes);
    ConfigEntry hours = brokerCfg.get("log.retention.hours");
    assertNotNull(hours, "broker config log.retention.hours");
    assertEquals("48", hours.value());
    assertEquals(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, hours.source());
    assertFalse(hours.isDefault());
    ConfigEntry maxBytes = brokerCfg.get("socket.request.max.bytes");
    assertNotNull(maxBytes, "broker config socket.request.max.bytes");
    assertEquals("104857600", maxBytes.value());
    assertTrue(maxBytes.isDefault());
    assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, maxBytes.source());

    // A topic without overrides inherits the broker's retention.
    admin.createTopics(List.of(new NewTopic("inherits", 1, (short) 1))).all().get();
    ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, "inherits");
    Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
    assertEquals(String.valueOf(48L * 3600 * 1000), cfg.get("retention.ms").value());
    assertEquals(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, cfg.get("retention.ms").source());
    assertEquals("-1", cfg.get("retention.bytes").value());
    assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, cfg.get("retention.bytes").source());
    assertTrue(cfg.get("retention.bytes").isDefault());

    // An incremental change shows up as a topic override; deleting it goes back to the broker's.
    admin.incrementalAlterConfigs(Map.of(res, List.of(
        new AlterConfigOp(new ConfigEntry("retention.ms", "60000"), AlterConfigOp.OpType.SET)))).all().get();
    cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
    assertEquals("60000", cfg.get("retention.ms").value());
    assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, cfg.get("retention.ms").source());
    admin.incrementalAlterConfigs(Map.of(res, List.of(
        new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all().get();
    cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
    assertEquals(String.valueOf(48L * 3600 * 1000), cfg.get("retention.ms").value());
    assertEquals(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, cfg.get("retention.ms").source());
  }

  /** Kafka 4.x accepts a SUBTRACT that removes the last cleanup policy: an empty list. */
  @Test
  void subtractLeavingCleanupPolicyEmptyIsAccepted() throws Exception {
    admin.createTopics(List.of(new NewTopic("no-policy", 1, (short) 1)
        .configs(Map.of("cleanup.policy", "delete")))).all().get();
    ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, "no-policy");
    admin.incrementalAlterConfigs(Map.of(res, List.of(
        new AlterConfigOp(new ConfigEntry("cleanup.policy", "delete"), AlterConfigOp.OpType.SUBTRACT)))).all().get();
    ConfigEntry policy = admin.describeConfigs(List.of(res)).all().get().get(res).get("cleanup.policy");
    assertEquals("", policy.value());
    assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, policy.source());
    // A value that is not a policy is still refused.
    cause(InvalidConfigurationException.class, () -> admin.incrementalAlterConfigs(Map.of(res, List.of(
        new AlterConfigOp(new ConfigEntry("cleanup.policy", "shred"), AlterConfigOp.OpType.APPEND)))).all().get());
  }

  /** advertised.listeners derived from listeners is listed like Kafka's: null, default source. */
  @Test
  void derivedAdvertisedListenersIsDescribed() throws Exception {
    ConfigResource brokerRes = new ConfigResource(ConfigResource.Type.BROKER, "1");
    Config cfg = admin.describeConfigs(List.of(brokerRes)).all().get().get(brokerRes);
    ConfigEntry adv = cfg.get("advertised.listeners");
    assertNotNull(adv, "advertised.listeners listed");
    assertNull(adv.value());
    assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, adv.source());
    assertEquals(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, cfg.get("listeners").source());
  }

  /**
   * The Metadata request that auto-creates a topic answers UNKNOWN_TOPIC_OR_PARTITION without
   * partitions, as Kafka 4.x does (so partitionsFor is empty the first time); the topic exists
   * afterwards and a later call sees its partition.
   */
  @Test
  void autoCreationThroughMetadataAnswersTheTopicOnTheNextRequest() throws Exception {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "true");
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
      assertTrue(consumer.partitionsFor("auto-md", Duration.ofSeconds(10)).isEmpty(),
          "the creating Metadata answers no partitions");
      assertTrue(admin.listTopics().names().get().contains("auto-md"), "the topic was created");
      assertEquals(1, consumer.partitionsFor("auto-md", Duration.ofSeconds(10)).size());
    }
  }
}
