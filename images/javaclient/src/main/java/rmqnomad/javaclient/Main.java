package rmqnomad.javaclient;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.common.namesrv.DefaultTopAddressing;

/**
 * A small RocketMQ test client.
 *
 * <pre>
 *   Main produce-consume --topic T --count N [--timeout SECONDS] [--namesrv ADDR]
 *                        [--no-wait-address-server]
 *   Main resolve [--timeout SECONDS]
 * </pre>
 *
 * Name servers come from the standard RocketMQ settings: {@code -Drocketmq.namesrv.addr=a:p;b:p}
 * (or the NAMESRV_ADDR environment variable, or --namesrv), else the address server given by
 * {@code -Drocketmq.namesrv.domain=HOST:PORT} and {@code -Drocketmq.namesrv.domain.subgroup=NAME}.
 *
 * <p>Results go to stdout ({@code sent N}, {@code received N}); progress and errors to stderr.
 * Exit status: 0 success, 1 failure or timeout, 2 usage error.
 */
public final class Main {
    private static final String RUN_PROPERTY = "rmqNomadRun";
    private static final String SEQ_PROPERTY = "rmqNomadSeq";

    private Main() {
    }

    public static void main(String[] args) {
        int rc;
        try {
            rc = run(args);
        } catch (UsageException e) {
            System.err.println("error: " + e.getMessage());
            usage();
            rc = 2;
        } catch (Failure e) {
            System.err.println("error: " + e.getMessage());
            rc = 1;
        } catch (Exception e) {
            System.err.println("error: " + e);
            rc = 1;
        }
        System.out.flush();
        // The RocketMQ client leaves non-daemon threads behind; leave for sure.
        Runtime.getRuntime().halt(rc);
    }

    private static void usage() {
        System.err.println(String.join("\n",
            "usage: Main produce-consume --topic T --count N [--timeout SECONDS] [--namesrv ADDR]",
            "                            [--no-wait-address-server]",
            "       Main resolve [--timeout SECONDS]",
            "name servers: -Drocketmq.namesrv.addr=IP:PORT;IP:PORT (or NAMESRV_ADDR, or --namesrv),",
            "  else the address server -Drocketmq.namesrv.domain=HOST:PORT",
            "  -Drocketmq.namesrv.domain.subgroup=SUBGROUP (GET http://HOST:PORT/rocketmq/SUBGROUP)"));
    }

    static int run(String[] args) throws Exception {
        if (args.length == 0) {
            throw new UsageException("no command");
        }
        Options o = Options.parse(args);
        switch (o.command) {
            case "produce-consume":
                return produceConsume(o);
            case "resolve":
                System.out.println(resolve(o, deadline(o)));
                return 0;
            case "-h":
            case "--help":
            case "help":
                usage();
                return 0;
            default:
                throw new UsageException("unknown command " + o.command);
        }
    }

    private static long deadline(Options o) {
        return System.nanoTime() + TimeUnit.SECONDS.toNanos(o.timeoutSeconds);
    }

    private static long remainingMillis(long deadline) {
        return TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
    }

    /**
     * Reports where the name servers come from; in address-server mode waits (until the deadline)
     * for the address server to answer with a list, as the RocketMQ client itself asks only once
     * at start, again 10 s later and then every 2 minutes. Returns the list or a description.
     */
    private static String resolve(Options o, long deadline) throws Failure, InterruptedException {
        if (o.namesrv != null) {
            return o.namesrv;
        }
        String fixed = System.getProperty(MixAll.NAMESRV_ADDR_PROPERTY, System.getenv(MixAll.NAMESRV_ADDR_ENV));
        if (fixed != null && !fixed.isBlank()) {
            return fixed;
        }
        if (System.getProperty("rocketmq.namesrv.domain") == null) {
            throw new UsageException("no name server: set -Drocketmq.namesrv.addr=IP:PORT;... (or NAMESRV_ADDR, "
                + "or --namesrv) or -Drocketmq.namesrv.domain=HOST:PORT for an address server");
        }
        String url = MixAll.getWSAddr();
        if (!o.waitAddressServer) {
            return "(address server " + url + ", not waited for)";
        }
        DefaultTopAddressing lookup = new DefaultTopAddressing(url);
        int attempts = 0;
        while (true) {
            attempts++;
            long timeout = Math.max(200, Math.min(3000, remainingMillis(deadline)));
            String list = lookup.fetchNSAddr(false, timeout);
            if (list != null && !list.isBlank()) {
                System.err.printf("address server %s answered %s (attempt %d)%n", url, list, attempts);
                return list;
            }
            if (remainingMillis(deadline) <= 0) {
                throw new Failure("address server " + url + " gave no name server list in " + o.timeoutSeconds
                    + " s (" + attempts + " attempts: no HTTP 200 with a non-blank body)");
            }
            Thread.sleep(Math.min(1000, Math.max(1, remainingMillis(deadline))));
        }
    }

    private static int produceConsume(Options o) throws Exception {
        if (o.topic == null || o.count <= 0) {
            throw new UsageException("produce-consume needs --topic T and --count N (N > 0)");
        }
        long deadline = deadline(o);
        String source = resolve(o, deadline);
        String run = UUID.randomUUID().toString().substring(0, 8);
        System.err.printf("name servers: %s; topic %s, %d messages, run %s, timeout %d s%n",
            source, o.topic, o.count, run, o.timeoutSeconds);

        DefaultMQProducer producer = new DefaultMQProducer("rmq_nomad_pc_producer_" + run);
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer("rmq_nomad_pc_consumer_" + run);
        if (o.namesrv != null) {
            producer.setNamesrvAddr(o.namesrv);
            consumer.setNamesrvAddr(o.namesrv);
        }
        producer.setSendMsgTimeout(3000);
        producer.setRetryTimesWhenSendFailed(2);
        try {
            producer.start();
            produce(producer, o, run, deadline);
            System.out.println("sent " + o.count);
            System.out.flush();

            waitForRoute(producer, o.topic, deadline);
            Set<Integer> received = ConcurrentHashMap.newKeySet();
            consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
            consumer.setPollNameServerInterval(1000);
            consumer.subscribe(o.topic, "*");
            consumer.registerMessageListener((MessageListenerConcurrently) (msgs, context) -> {
                for (MessageExt m : msgs) {
                    if (run.equals(m.getUserProperty(RUN_PROPERTY))) {
                        received.add(Integer.parseInt(m.getUserProperty(SEQ_PROPERTY)));
                    }
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
            consumer.start();
            while (received.size() < o.count && remainingMillis(deadline) > 0) {
                Thread.sleep(100);
            }
            if (received.size() < o.count) {
                throw new Failure(String.format(Locale.ROOT,
                    "timed out after %d s: received %d of %d messages on topic %s",
                    o.timeoutSeconds, received.size(), o.count, o.topic));
            }
            System.out.println("received " + received.size());
            return 0;
        } finally {
            consumer.shutdown();
            producer.shutdown();
        }
    }

    private static void produce(DefaultMQProducer producer, Options o, String run, long deadline)
        throws Exception {
        Exception last = null;
        int sent = 0;
        while (sent < o.count) {
            Message m = new Message(o.topic, "rmq-nomad",
                ("rmq-nomad test message " + run + "/" + sent).getBytes(StandardCharsets.UTF_8));
            m.setKeys(run + "-" + sent);
            m.putUserProperty(RUN_PROPERTY, run);
            m.putUserProperty(SEQ_PROPERTY, Integer.toString(sent));
            try {
                SendResult r = producer.send(m, Math.max(1000, Math.min(3000, remainingMillis(deadline))));
                if (r.getSendStatus() == SendStatus.SEND_OK) {
                    sent++;
                    continue;
                }
                last = new IllegalStateException("send status " + r.getSendStatus());
            } catch (Exception e) {
                last = e;
            }
            if (remainingMillis(deadline) <= 0) {
                throw new Failure(String.format(Locale.ROOT,
                    "timed out after %d s: sent %d of %d messages to topic %s (last error: %s)",
                    o.timeoutSeconds, sent, o.count, o.topic, oneLine(last)));
            }
            System.err.println("send failed, retrying: " + oneLine(last));
            Thread.sleep(1000);
        }
    }

    /** The consumer needs the topic's route from the name servers at start to get queues at once. */
    private static void waitForRoute(DefaultMQProducer producer, String topic, long deadline) throws Exception {
        Exception last = null;
        while (true) {
            try {
                @SuppressWarnings("deprecation")
                List<MessageQueue> queues = producer.fetchPublishMessageQueues(topic);
                if (!queues.isEmpty()) {
                    return;
                }
            } catch (Exception e) {
                last = e;
            }
            if (remainingMillis(deadline) <= 0) {
                throw new Failure("timed out waiting for the route of topic " + topic + " (last error: "
                    + oneLine(last) + ")");
            }
            Thread.sleep(500);
        }
    }

    private static String oneLine(Exception e) {
        if (e == null) {
            return "none";
        }
        String s = e.getClass().getSimpleName() + ": " + e.getMessage();
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    static final class Options {
        String command;
        String topic;
        int count;
        long timeoutSeconds = 60;
        String namesrv;
        boolean waitAddressServer = true;

        static Options parse(String[] args) throws UsageException {
            Options o = new Options();
            o.command = args[0];
            for (int i = 1; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "--topic":
                        o.topic = value(args, ++i, a);
                        break;
                    case "--count":
                        o.count = intValue(args, ++i, a);
                        break;
                    case "--timeout":
                        o.timeoutSeconds = intValue(args, ++i, a);
                        break;
                    case "--namesrv":
                        o.namesrv = value(args, ++i, a);
                        break;
                    case "--no-wait-address-server":
                        o.waitAddressServer = false;
                        break;
                    default:
                        throw new UsageException("unknown argument " + a);
                }
            }
            return o;
        }

        private static String value(String[] args, int i, String name) throws UsageException {
            if (i >= args.length) {
                throw new UsageException(name + " needs a value");
            }
            return args[i];
        }

        private static int intValue(String[] args, int i, String name) throws UsageException {
            String v = value(args, i, name);
            try {
                return Integer.parseInt(v);
            } catch (NumberFormatException e) {
                throw new UsageException(name + " needs a number, not " + v);
            }
        }
    }

    static class Failure extends Exception {
        Failure(String message) {
            super(message);
        }
    }

    static final class UsageException extends Failure {
        UsageException(String message) {
            super(message);
        }
    }
}
