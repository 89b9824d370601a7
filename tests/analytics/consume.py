"""An analytics job's view of Doorstep: reads topics with Confluent's own Python client.

Nothing here comes from Doorstep: the schemas are fetched from the schema registry by the
ids in the records' headers (SchemaRegistryClient + AvroDeserializer), and only committed
records are read (isolation.level=read_committed). Prints one JSON object per record:

    {"topic": ..., "partition": ..., "offset": ..., "key": ..., "schema_id": ..., "value": {...}}

Timestamps (Avro timestamp-millis, which fastavro turns into datetimes) are printed as epoch
milliseconds. Used by tests/tests/analytics_consumer.rs; the README shows it.

    python consume.py --brokers 127.0.0.1:19092 --registry http://127.0.0.1:18081 \\
        --topic orders.status.v1 --topic orders.tracking.v1 --expect 20
"""

import argparse
import datetime
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def plain(value):
    """The decoded value with datetimes as epoch milliseconds (JSON-ready)."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--topic", action="append", required=True)
    parser.add_argument("--expect", type=int, default=1, help="stop after this many records")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for them")
    parser.add_argument("--group", default="analytics-" + uuid.uuid4().hex[:12])
    args = parser.parse_args()

    registry = SchemaRegistryClient({"url": args.registry})
    deserialize = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe(args.topic)
    seen = 0
    deadline = time.monotonic() + args.timeout
    try:
        while seen < args.expect and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            raw = msg.value()
            ctx = SerializationContext(msg.topic(), MessageField.VALUE)
            value = deserialize(raw, ctx)
            key = msg.key()
            print(
                json.dumps(
                    {
                        "topic": msg.topic(),
                        "partition": msg.partition(),
                        "offset": msg.offset(),
                        "key": key.decode("utf-8") if key is not None else None,
                        "schema_id": int.from_bytes(raw[1:5], "big"),
                        "value": plain(value),
                    },
                    sort_keys=True,
                ),
                flush=True,
            )
            seen += 1
    finally:
        consumer.close()
    if seen < args.expect:
        print(f"consume.py: only {seen} of {args.expect} records within {args.timeout}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
