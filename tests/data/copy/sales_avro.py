"""How tests/data/copy/sales.avro was made (fastavro 1.x): 300 rows in deflate blocks of
about 2000 bytes. Field "ID" is upper case ('auto' leaves column id NULL, 'auto ignorecase'
fills it); row 150's amount does not fit NUMERIC(8,2); "extra" has no column."""
import datetime
import decimal

import fastavro

schema = {
    "type": "record",
    "name": "Sale",
    "fields": [
        {"name": "ID", "type": "long"},
        {"name": "name", "type": ["null", "string"]},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "ok", "type": "boolean"},
        {"name": "score", "type": "double"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "extra", "type": "string"},
    ],
}
rows = []
for i in range(1, 301):
    rows.append({
        "ID": i,
        "name": None if i % 10 == 0 else f"n{i % 7}",
        "amount": decimal.Decimal(i * 3) / 100 if i != 150 else decimal.Decimal("123456789.00"),
        "day": datetime.date(2024, 1, 1) + datetime.timedelta(days=i),
        "ok": i % 2 == 0,
        "score": i / 4,
        "ts": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(minutes=i),
        "extra": "x",
    })
with open("sales.avro", "wb") as f:
    fastavro.writer(f, fastavro.parse_schema(schema), rows, codec="deflate", sync_interval=2000)
