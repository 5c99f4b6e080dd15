package dev.oxbow.compat;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionReplica;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.*;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The cluster administration APIs a single Kafka 4.x node answers (reassignments, elections,
 * replica log dirs, the metadata quorum, features, client quotas, SCRAM credentials, ACLs
 * without an authorizer, delegation tokens on PLAINTEXT, telemetry, config resources) through
 * the AdminClient and through kafka-metadata-quorum.sh and kafka-features.sh (kafka-tools'
 * MetadataQuorumCommand and FeatureCommand, run as separate JVMs). Expected answers are what a
 * Kafka 4.4 combined-mode node answers.
 */
@Timeout(180)
class ClusterAdminTest {
  static final int NODE = 1;
  OxbowBroker broker;
  Admin admin;

  @BeforeEach
  void start() throws Exception {
    broker = new OxbowBroker();
    admin = admin();
  }

  @AfterEach
  void stop() {
    admin.close(Duration.ofSeconds(5));
    broker.close();
  }

  Admin admin() {
    return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap));
  }

  void restart() throws Exception {
    admin.close(Duration.ofSeconds(5));
    broker.restart();
    admin = admin();
  }

  static <T extends Throwable> T cause(Class<T> type, Executable e) {
    ExecutionException ex = assertThrows(ExecutionException.class, e::run);
    assertInstanceOf(type, ex.getCause(), () -> "got " + ex.getCause());
    return type.cast(ex.getCause());
  }

  interface Executable {
    void run() throws Exception;
  }

  Clients.Run tool(String mainClass, String... args) throws Exception {
    List<String> all = new ArrayList<>(List.of("--bootstrap-server", broker.bootstrap));
    all.addAll(List.of(args));
    Clients.Run r = Clients.runJava(broker.dir, Duration.ofSeconds(90), mainClass, all.toArray(new String[0]));
    assertEquals(0, r.exitCode(), () -> mainClass + " " + String.join(" ", args) + ":\n" + r);
    return r;
  }

  @Test
  void reassignmentsAndElectionsOnOneNode() throws Exception {
    admin.createTopics(List.of(new NewTopic("moves", 2, (short) 1))).all().get();
    TopicPartition p0 = new TopicPartition("moves", 0);
    // To the replicas it has: done at once, nothing left ongoing.
    admin.alterPartitionReassignments(Map.of(p0, Optional.of(new NewPartitionReassignment(List.of(NODE))))).all().get();
    assertTrue(admin.listPartitionReassignments().reassignments().get().isEmpty());
    InvalidReplicaAssignmentException other = cause(InvalidReplicaAssignmentException.class, () ->
        admin.alterPartitionReassignments(Map.of(p0, Optional.of(new NewPartitionReassignment(List.of(NODE, 2))))).all().get());
    assertEquals("The manual partition assignment includes broker 2, but no such broker is registered.", other.getMessage());
    InvalidReplicaAssignmentException twice = cause(InvalidReplicaAssignmentException.class, () ->
        admin.alterPartitionReassignments(Map.of(p0, Optional.of(new NewPartitionReassignment(List.of(NODE, NODE))))).all().get());
    assertEquals("The manual partition assignment includes the broker 1 more than once.", twice.getMessage());
    cause(NoReassignmentInProgressException.class, () ->
        admin.alterPartitionReassignments(Map.of(p0, Optional.empty())).all().get());
    UnknownTopicOrPartitionException unknown = cause(UnknownTopicOrPartitionException.class, () ->
        admin.alterPartitionReassignments(Map.of(new TopicPartition("moves", 7), Optional.of(new NewPartitionReassignment(List.of(NODE))))).all().get());
    assertEquals("Unable to find partition moves:7.", unknown.getMessage());

    TopicPartition missing = new TopicPartition("nope", 0);
    for (ElectionType type : ElectionType.values()) {
      Map<TopicPartition, Optional<Throwable>> r = admin.electLeaders(type, Set.of(p0, missing)).partitions().get();
      assertInstanceOf(ElectionNotNeededException.class, r.get(p0).orElseThrow(), type.toString());
      assertInstanceOf(UnknownTopicOrPartitionException.class, r.get(missing).orElseThrow());
      assertEquals("No such topic as nope", r.get(missing).get().getMessage());
    }
    // Every partition: the ones needing no election are left out.
    assertTrue(admin.electLeaders(ElectionType.PREFERRED, null).partitions().get().isEmpty());
  }

  @Test
  void alterReplicaLogDirs() throws Exception {
    admin.close(Duration.ofSeconds(5));
    broker.close();
    Path dirs = Files.createTempDirectory("oxbow-dirs");
    String a = dirs.resolve("a").toString();
    String b = dirs.resolve("b").toString();
    broker = new OxbowBroker("log.dirs=" + a + "," + b);
    admin = admin();
    admin.createTopics(List.of(new NewTopic("placed", 1, (short) 1))).all().get();
    Map<String, LogDirDescription> described = admin.describeLogDirs(List.of(NODE)).allDescriptions().get().get(NODE);
    assertEquals(Set.of(a, b), described.keySet());
    TopicPartition tp = new TopicPartition("placed", 0);
    String home = described.entrySet().stream()
        .filter(e -> e.getValue().replicaInfos().containsKey(tp)).findFirst().orElseThrow().getKey();
    String elsewhere = home.equals(a) ? b : a;
    TopicPartitionReplica replica = new TopicPartitionReplica("placed", 0, NODE);
    admin.alterReplicaLogDirs(Map.of(replica, home)).all().get();
    cause(LogDirNotFoundException.class, () -> admin.alterReplicaLogDirs(Map.of(replica, "/no/such/dir")).all().get());
    cause(UnknownTopicOrPartitionException.class, () ->
        admin.alterReplicaLogDirs(Map.of(new TopicPartitionReplica("nope", 0, NODE), home)).all().get());
    // Moving between log dirs is not implemented: refused, and the partition stays put.
    cause(KafkaStorageException.class, () -> admin.alterReplicaLogDirs(Map.of(replica, elsewhere)).all().get());
    assertTrue(admin.describeLogDirs(List.of(NODE)).allDescriptions().get().get(NODE).get(home).replicaInfos().containsKey(tp));
  }

  @Test
  void metadataQuorumWithAdminAndTool() throws Exception {
    QuorumInfo q = admin.describeMetadataQuorum().quorumInfo().get();
    assertEquals(NODE, q.leaderId());
    assertEquals(1, q.leaderEpoch());
    assertEquals(1, q.voters().size());
    assertTrue(q.observers().isEmpty());
    QuorumInfo.ReplicaState voter = q.voters().get(0);
    assertEquals(NODE, voter.replicaId());
    assertEquals(q.highWatermark(), voter.logEndOffset());
    assertTrue(voter.lastFetchTimestamp().isPresent());
    assertTrue(voter.lastCaughtUpTimestamp().isPresent());
    QuorumInfo.Node node = q.nodes().get(NODE);
    assertNotNull(node, "v2 nodes");
    assertEquals("PLAINTEXT", node.endpoints().get(0).listener());
    assertEquals(broker.port, node.endpoints().get(0).port());

    String tool = "org.apache.kafka.tools.MetadataQuorumCommand";
    String status = tool(tool, "describe", "--status").stdout();
    String clusterId = admin.describeCluster().clusterId().get();
    assertTrue(status.contains("ClusterId:              " + clusterId), status);
    assertTrue(status.contains("LeaderId:               " + NODE), status);
    assertTrue(status.contains("MaxFollowerLag:         0"), status);
    // A static quorum: no directory id, which the tool leaves out.
    assertTrue(status.contains("CurrentVoters:          [{\"id\": 1, \"endpoints\": [\"PLAINTEXT://"
        + broker.bootstrap + "\"]}]"), status);
    assertTrue(status.contains("CurrentObservers:       []"), status);
    String replication = tool(tool, "describe", "--replication", "--human-readable").stdout();
    List<String> rows = replication.lines().filter(l -> !l.isBlank()).toList();
    assertEquals(2, rows.size(), replication);
    assertTrue(rows.get(0).startsWith("NodeId"), replication);
    assertTrue(rows.get(1).startsWith("1 ") && rows.get(1).contains("ms ago") && rows.get(1).trim().endsWith("Leader"), replication);
  }

  @Test
  void featuresDescribeAndUpdate() throws Exception {
    FeatureMetadata f = admin.describeFeatures().featureMetadata().get();
    assertEquals(25, f.finalizedFeatures().get("metadata.version").maxVersionLevel());
    assertEquals(2, f.finalizedFeatures().get("transaction.version").maxVersionLevel());
    assertEquals(2, f.supportedFeatures().get("transaction.version").maxVersion());
    assertFalse(f.finalizedFeatures().containsKey("group.version"), "KIP-848 groups are not implemented");

    String tool = "org.apache.kafka.tools.FeatureCommand";
    String described = tool(tool, "describe").stdout();
    assertTrue(described.matches("(?s).*Feature: metadata\\.version\\s+SupportedMinVersion: 4\\.0-IV3\\s+SupportedMaxVersion: 4\\.0-IV3\\s+FinalizedVersionLevel: 4\\.0-IV3\\s+Epoch: \\d+.*"), described);
    assertTrue(described.matches("(?s).*Feature: transaction\\.version\\s+SupportedMinVersion: 0\\s+SupportedMaxVersion: 2\\s+FinalizedVersionLevel: 2\\s.*"), described);

    InvalidUpdateVersionException up = cause(InvalidUpdateVersionException.class, () -> admin.updateFeatures(
        Map.of("metadata.version", new FeatureUpdate((short) 33, FeatureUpdate.UpgradeType.UPGRADE)), new UpdateFeaturesOptions()).all().get());
    assertEquals("The update failed for all features since the following feature had an error: Invalid update version 33 "
        + "for feature metadata.version. Local controller 1 only supports versions 25", up.getMessage());
    InvalidUpdateVersionException tv3 = cause(InvalidUpdateVersionException.class, () -> admin.updateFeatures(
        Map.of("transaction.version", new FeatureUpdate((short) 3, FeatureUpdate.UpgradeType.UPGRADE)), new UpdateFeaturesOptions()).all().get());
    assertTrue(tv3.getMessage().endsWith("Local controller 1 only supports versions 0-2"), tv3.getMessage());
    cause(InvalidUpdateVersionException.class, () -> admin.updateFeatures(
        Map.of("group.version", new FeatureUpdate((short) 1, FeatureUpdate.UpgradeType.UPGRADE)), new UpdateFeaturesOptions()).all().get());
    cause(InvalidUpdateVersionException.class, () -> admin.updateFeatures(
        Map.of("transaction.version", new FeatureUpdate((short) 1, FeatureUpdate.UpgradeType.UPGRADE)), new UpdateFeaturesOptions()).all().get());

    // validate_only changes nothing; a safe downgrade does, durably; an upgrade restores it.
    admin.updateFeatures(Map.of("transaction.version", new FeatureUpdate((short) 1, FeatureUpdate.UpgradeType.SAFE_DOWNGRADE)),
        new UpdateFeaturesOptions().validateOnly(true)).all().get();
    assertEquals(2, admin.describeFeatures().featureMetadata().get().finalizedFeatures().get("transaction.version").maxVersionLevel());
    assertTrue(tool(tool, "downgrade", "--feature", "transaction.version=1").stdout().contains("transaction.version was downgraded to 1."));
    restart();
    FeatureMetadata after = admin.describeFeatures().featureMetadata().get();
    assertEquals(1, after.finalizedFeatures().get("transaction.version").maxVersionLevel());
    assertTrue(after.finalizedFeaturesEpoch().orElseThrow() > f.finalizedFeaturesEpoch().orElseThrow());
    admin.updateFeatures(Map.of("transaction.version", new FeatureUpdate((short) 2, FeatureUpdate.UpgradeType.UPGRADE)),
        new UpdateFeaturesOptions()).all().get();
    assertEquals(2, admin.describeFeatures().featureMetadata().get().finalizedFeatures().get("transaction.version").maxVersionLevel());
  }

  @Test
  void clientQuotasAreStoredAndDescribed() throws Exception {
    ClientQuotaEntity alice = new ClientQuotaEntity(Map.of(ClientQuotaEntity.USER, "alice"));
    Map<String, String> defaultClient = new HashMap<>();
    defaultClient.put(ClientQuotaEntity.CLIENT_ID, null);
    ClientQuotaEntity anyClient = new ClientQuotaEntity(defaultClient);
    admin.alterClientQuotas(List.of(
        new ClientQuotaAlteration(alice, List.of(
            new ClientQuotaAlteration.Op("producer_byte_rate", 1024.0),
            new ClientQuotaAlteration.Op("request_percentage", 12.5))),
        new ClientQuotaAlteration(anyClient, List.of(new ClientQuotaAlteration.Op("consumer_byte_rate", 2048.0))))).all().get();
    InvalidRequestException badKey = cause(InvalidRequestException.class, () -> admin.alterClientQuotas(List.of(
        new ClientQuotaAlteration(alice, List.of(new ClientQuotaAlteration.Op("foo", 1.0))))).all().get());
    assertEquals("Invalid configuration key foo", badKey.getMessage());
    InvalidRequestException fraction = cause(InvalidRequestException.class, () -> admin.alterClientQuotas(List.of(
        new ClientQuotaAlteration(alice, List.of(new ClientQuotaAlteration.Op("producer_byte_rate", 1.5))))).all().get());
    assertEquals("producer_byte_rate cannot be a fractional value.", fraction.getMessage());
    // validateOnly stores nothing.
    admin.alterClientQuotas(List.of(new ClientQuotaAlteration(new ClientQuotaEntity(Map.of(ClientQuotaEntity.USER, "bob")),
        List.of(new ClientQuotaAlteration.Op("producer_byte_rate", 1.0)))), new AlterClientQuotasOptions().validateOnly(true)).all().get();

    restart();
    Map<ClientQuotaEntity, Map<String, Double>> all = admin.describeClientQuotas(ClientQuotaFilter.all()).entities().get();
    assertEquals(Map.of(alice, Map.of("producer_byte_rate", 1024.0, "request_percentage", 12.5),
        anyClient, Map.of("consumer_byte_rate", 2048.0)), all);
    assertEquals(Set.of(alice), admin.describeClientQuotas(ClientQuotaFilter.containsOnly(
        List.of(ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, "alice")))).entities().get().keySet());
    assertEquals(Set.of(anyClient), admin.describeClientQuotas(ClientQuotaFilter.contains(
        List.of(ClientQuotaFilterComponent.ofDefaultEntity(ClientQuotaEntity.CLIENT_ID)))).entities().get().keySet());
    UnsupportedVersionException badType = cause(UnsupportedVersionException.class, () -> admin.describeClientQuotas(
        ClientQuotaFilter.contains(List.of(ClientQuotaFilterComponent.ofEntityType("foo")))).entities().get());
    assertEquals("Unsupported entity type foo", badType.getMessage());

    admin.alterClientQuotas(List.of(new ClientQuotaAlteration(alice, List.of(
        new ClientQuotaAlteration.Op("producer_byte_rate", null), new ClientQuotaAlteration.Op("request_percentage", null))))).all().get();
    assertEquals(Set.of(anyClient), admin.describeClientQuotas(ClientQuotaFilter.all()).entities().get().keySet());
  }

  @Test
  void scramCredentialsAreStoredAndDescribed() throws Exception {
    assertTrue(admin.describeUserScramCredentials().all().get().isEmpty());
    cause(ResourceNotFoundException.class, () -> admin.describeUserScramCredentials(List.of("bob")).description("bob").get());
    admin.alterUserScramCredentials(List.of(
        new UserScramCredentialUpsertion("bob", new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), "secret"),
        new UserScramCredentialUpsertion("carol", new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), "other"))).all().get();
    UnacceptableCredentialException few = cause(UnacceptableCredentialException.class, () -> admin.alterUserScramCredentials(List.of(
        new UserScramCredentialUpsertion("eve", new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), "x"))).all().get());
    assertEquals("Too few iterations", few.getMessage());
    cause(ResourceNotFoundException.class, () -> admin.alterUserScramCredentials(List.of(
        new UserScramCredentialDeletion("zed", ScramMechanism.SCRAM_SHA_256))).all().get());
    DuplicateResourceException dup = cause(DuplicateResourceException.class, () ->
        admin.describeUserScramCredentials(List.of("bob", "bob")).all().get());
    assertEquals("Cannot describe SCRAM credentials for the same user twice in a single request: bob", dup.getMessage());

    restart();
    Map<String, UserScramCredentialsDescription> users = admin.describeUserScramCredentials().all().get();
    assertEquals(Set.of("bob", "carol"), users.keySet());
    ScramCredentialInfo bob = users.get("bob").credentialInfos().get(0);
    assertEquals(ScramMechanism.SCRAM_SHA_256, bob.mechanism());
    assertEquals(8192, bob.iterations());
    String stored = Files.readString(broker.dir.resolve("data").resolve("oxbow-scram-credentials.json"));
    assertFalse(stored.contains("secret"), "no password on disk");

    admin.alterUserScramCredentials(List.of(new UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_256))).all().get();
    assertEquals(Set.of("carol"), admin.describeUserScramCredentials().all().get().keySet());
  }

  @Test
  void aclsAndDelegationTokensAnswerAsAnUnsecuredKafka() throws Exception {
    AclBinding acl = new AclBinding(new ResourcePattern(ResourceType.TOPIC, "t", PatternType.LITERAL),
        new AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW));
    assertEquals("No Authorizer is configured.",
        cause(SecurityDisabledException.class, () -> admin.createAcls(List.of(acl)).all().get()).getMessage());
    assertEquals("No Authorizer is configured on the broker",
        cause(SecurityDisabledException.class, () -> admin.describeAcls(AclBindingFilter.ANY).values().get()).getMessage());
    assertEquals("No Authorizer is configured.",
        cause(SecurityDisabledException.class, () -> admin.deleteAcls(List.of(AclBindingFilter.ANY)).all().get()).getMessage());

    // Kafka refuses every token request on a PLAINTEXT connection.
    cause(UnsupportedByAuthenticationException.class, () -> admin.createDelegationToken().delegationToken().get());
    cause(UnsupportedByAuthenticationException.class, () -> admin.describeDelegationToken().delegationTokens().get());
    cause(UnsupportedByAuthenticationException.class, () -> admin.renewDelegationToken(new byte[] {1, 2}).expiryTimestamp().get());
    cause(UnsupportedByAuthenticationException.class, () -> admin.expireDelegationToken(new byte[] {1, 2}).expiryTimestamp().get());
  }

  @Test
  void telemetryInstanceIdsAndConfigResources() throws Exception {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
      Uuid id = producer.clientInstanceId(Duration.ofSeconds(30));
      assertNotNull(id);
      assertNotEquals(Uuid.ZERO_UUID, id);
    }
    try (Admin pushing = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap,
        AdminClientConfig.ENABLE_METRICS_PUSH_CONFIG, "true"))) {
      assertNotEquals(Uuid.ZERO_UUID, pushing.clientInstanceId(Duration.ofSeconds(30)));
    }

    admin.createTopics(List.of(new NewTopic("listed", 1, (short) 1))).all().get();
    Collection<ConfigResource> all = admin.listConfigResources().all().get();
    assertTrue(all.contains(new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(NODE))), all.toString());
    assertTrue(all.contains(new ConfigResource(ConfigResource.Type.TOPIC, "listed")), all.toString());
    Collection<ConfigResource> topics = admin.listConfigResources(Set.of(ConfigResource.Type.TOPIC), new ListConfigResourcesOptions()).all().get();
    assertTrue(topics.stream().allMatch(r -> r.type() == ConfigResource.Type.TOPIC), topics.toString());
    cause(UnsupportedVersionException.class, () ->
        admin.listConfigResources(Set.of(ConfigResource.Type.UNKNOWN), new ListConfigResourcesOptions()).all().get());
  }
}
