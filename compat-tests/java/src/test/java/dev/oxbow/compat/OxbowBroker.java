package dev.oxbow.compat;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The real oxbow binary ($OXBOW_BIN, else ../../target/debug/oxbow) on an ephemeral port and a
 * temporary data dir. A missing binary fails the test loudly.
 */
final class OxbowBroker implements AutoCloseable {
  final Path dir;
  final List<String> overrides;
  Process process;
  String bootstrap;

  OxbowBroker(String... overrides) throws Exception {
    this.dir = Files.createTempDirectory("oxbow-java");
    this.overrides = List.of(overrides);
    start(0);
  }

  private static String binary() {
    String bin = System.getenv("OXBOW_BIN");
    if (bin == null) bin = new File("../../target/debug/oxbow").getAbsolutePath();
    if (!new File(bin).canExecute()) {
      throw new IllegalStateException("oxbow binary missing at " + bin + ": cargo build -p oxbow-broker");
    }
    return bin;
  }

  private void start(int port) throws Exception {
    List<String> cmd = new ArrayList<>(List.of(binary(), "serve",
        "--override", "listeners=PLAINTEXT://127.0.0.1:" + port,
        "--override", "log.dirs=" + dir,
        "--override", "group.initial.rebalance.delay.ms=0"));
    for (String o : overrides) {
      cmd.add("--override");
      cmd.add(o);
    }
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.redirectError(ProcessBuilder.Redirect.appendTo(dir.resolve("oxbow.stderr").toFile()));
    process = pb.start();
    BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    String line = out.readLine();
    Matcher m = Pattern.compile("oxbow ready PLAINTEXT://([^ ]+)").matcher(line == null ? "" : line);
    if (!m.find()) {
      throw new IllegalStateException("broker not ready: " + line + "; stderr in " + dir.resolve("oxbow.stderr"));
    }
    bootstrap = m.group(1);
  }

  /** SIGTERM, wait, then start again on the same data dir and port. */
  void restart() throws Exception {
    process.destroy();
    if (!process.waitFor(30, TimeUnit.SECONDS)) throw new IllegalStateException("broker did not stop");
    int port = Integer.parseInt(bootstrap.substring(bootstrap.lastIndexOf(':') + 1));
    start(port);
  }

  @Override
  public void close() {
    process.destroyForcibly();
  }
}
