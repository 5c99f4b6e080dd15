package dev.oxbow.streams;

import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The word count the tests run as a separate JVM and kill -9:
 * {@code WordCountMain <bootstrap> <state dir> <application.id> <input topic> <output topic>}.
 * Input records carry one word as value; every committed count goes to the output topic
 * (word -> count). Prints {@code oxbow-streams state OLD -> NEW} on every state change; exits 2
 * when the app shuts itself down after an error (the tests treat that as a failure).
 */
public final class WordCountMain {
  static final String STATE_MARK = "oxbow-streams state ";

  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    p.put(StreamsConfig.STATE_DIR_CONFIG, args[1]);
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[2]);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    // Tight but ordinary timeouts, so a killed instance's transaction and group membership expire
    // quickly.
    p.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), 10_000);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6_000);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1_500);

    StreamsBuilder b = new StreamsBuilder();
    b.stream(args[3], Consumed.with(Serdes.String(), Serdes.String()))
        .groupBy((key, word) -> word, Grouped.with("by-word", Serdes.String(), Serdes.String()))
        .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("word-counts")
            .withKeySerde(Serdes.String())
            .withValueSerde(Serdes.Long()))
        .toStream()
        .to(args[4], Produced.with(Serdes.String(), Serdes.Long()));

    KafkaStreams streams = new KafkaStreams(b.build(), p);
    CountDownLatch dead = new CountDownLatch(1);
    streams.setStateListener((now, before) -> {
      System.out.println(STATE_MARK + before + " -> " + now);
      System.out.flush();
      if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.PENDING_ERROR) dead.countDown();
    });
    streams.setUncaughtExceptionHandler(e -> {
      System.out.println("oxbow-streams uncaught exception, shutting down: " + e);
      e.printStackTrace(System.out);
      System.out.flush();
      return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.start();
    dead.await();
    System.out.println("oxbow-streams exiting with 2 after an error");
    System.out.flush();
    Runtime.getRuntime().halt(2);
  }
}
