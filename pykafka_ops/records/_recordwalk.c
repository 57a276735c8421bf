/*
 * pykafka_ops.records._recordwalk: walk the records section of a v2 record batch without
 * creating a Python object per record (the broker's produce path).
 *
 * walk_records(data, records_count, last_offset_delta) -> None | str
 *
 * ``data`` is any buffer (bytes, bytearray, memoryview: read through Py_buffer, never copied):
 * the records of one batch, already decompressed. Returns None when it holds exactly
 * ``records_count`` well-formed records (Kafka's DefaultRecord layout), or the reason it does
 * not, which the caller answers as INVALID_RECORD. The rules and the messages are those of the
 * pure-Python reference walker, pykafka_ops/records/record_walk.py (a differential test keeps
 * the two in step): read that file's docstring for the rules and the Kafka classes they follow.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Outcome of reading one varint or varlong. */
enum { VAR_OK = 0, VAR_TRUNCATED = 1, VAR_TOO_LONG = 2, VAR_OVERFLOW = 3 };

/*
 * Read an unsigned varint of ``bits`` bits (32: at most 5 bytes, 64: at most 10) from
 * buf[*pos, limit), as Kafka's ByteUtils.readUnsignedVarint/readUnsignedVarlong: a
 * continuation bit in the last allowed byte is "too long". Kafka drops the bits of that byte
 * beyond ``bits``; we refuse them (VAR_OVERFLOW), since librdkafka decodes every varint as 64
 * bits and would read another value.
 */
static int
read_unsigned(const unsigned char *buf, Py_ssize_t *pos, Py_ssize_t limit, int bits,
              uint64_t *out)
{
    const int max_bytes = (bits + 6) / 7;
    uint64_t value = 0;
    Py_ssize_t p = *pos;
    for (int i = 0; i < max_bytes; i++) {
        if (p >= limit)
            return VAR_TRUNCATED;
        unsigned char b = buf[p++];
        if (b < 0x80 && i == max_bytes - 1 && (b >> (bits - 7 * i)) != 0)
            return VAR_OVERFLOW;
        value |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *pos = p;
            *out = value;
            return VAR_OK;
        }
    }
    return VAR_TOO_LONG;
}

/* A zigzag varint (int32), Kafka's ByteUtils.readVarint. */
static int
read_varint(const unsigned char *buf, Py_ssize_t *pos, Py_ssize_t limit, int32_t *out)
{
    uint64_t raw;
    int status = read_unsigned(buf, pos, limit, 32, &raw);
    if (status == VAR_OK) {
        uint32_t n = (uint32_t)raw;
        *out = (int32_t)((n >> 1) ^ (0u - (n & 1u)));
    }
    return status;
}

/* A zigzag varlong (int64), Kafka's ByteUtils.readVarlong; the value itself is not needed. */
static int
skip_varlong(const unsigned char *buf, Py_ssize_t *pos, Py_ssize_t limit)
{
    uint64_t raw;
    return read_unsigned(buf, pos, limit, 64, &raw);
}

static PyObject *
field_error(Py_ssize_t index, const char *field, int status, int bits)
{
    if (status == VAR_TOO_LONG)
        return PyUnicode_FromFormat("record %zd: %s varint is longer than %d bytes",
                                    index, field, (bits + 6) / 7);
    if (status == VAR_OVERFLOW)
        return PyUnicode_FromFormat("record %zd: %s varint does not fit %d bits", index, field,
                                    bits);
    return PyUnicode_FromFormat("record %zd: %s runs past the end of the record", index, field);
}

/* Skip a length-prefixed field (key, value, header key or value): -1 and below mean null. */
#define READ_BYTES(field_len, field)                                                      \
    do {                                                                                  \
        int32_t n_;                                                                       \
        int st_ = read_varint(buf, &pos, end, &n_);                                       \
        if (st_ != VAR_OK)                                                                \
            return field_error(index, field_len, st_, 32);                                \
        if (n_ >= 0) {                                                                    \
            if (n_ > end - pos)                                                           \
                return PyUnicode_FromFormat("record %zd: %s of %d bytes overruns the record", \
                                            index, field, n_);                            \
            pos += n_;                                                                    \
        }                                                                                 \
    } while (0)

static PyObject *
walk(const unsigned char *buf, Py_ssize_t size, Py_ssize_t records_count,
     long long last_offset_delta)
{
    Py_ssize_t pos = 0;
    long long previous_delta = -1;
    if (records_count < 0)
        return PyUnicode_FromFormat("invalid record count %zd", records_count);
    for (Py_ssize_t index = 0; index < records_count; index++) {
        int32_t length;
        int status = read_varint(buf, &pos, size, &length);
        if (status == VAR_TRUNCATED)
            return PyUnicode_FromFormat(
                "record %zd: length runs past the end of the records (%zd declared)",
                index, records_count);
        if (status != VAR_OK)
            return field_error(index, "length", status, 32);
        if (length < 0 || length > size - pos)
            return PyUnicode_FromFormat("record %zd: length %d is invalid, %zd bytes remain",
                                        index, length, size - pos);
        Py_ssize_t start = pos;
        Py_ssize_t end = pos + length;

        if (pos >= end)
            return field_error(index, "attributes", VAR_TRUNCATED, 8);
        pos += 1;
        status = skip_varlong(buf, &pos, end);
        if (status != VAR_OK)
            return field_error(index, "timestampDelta", status, 64);
        int32_t offset_delta;
        status = read_varint(buf, &pos, end, &offset_delta);
        if (status != VAR_OK)
            return field_error(index, "offsetDelta", status, 32);
        if (offset_delta <= previous_delta || offset_delta > last_offset_delta)
            return PyUnicode_FromFormat(
                "record %zd: offsetDelta %d does not follow %lld within lastOffsetDelta %lld",
                index, offset_delta, previous_delta, last_offset_delta);
        previous_delta = offset_delta;

        READ_BYTES("keyLength", "key");
        READ_BYTES("valueLength", "value");

        int32_t header_count;
        status = read_varint(buf, &pos, end, &header_count);
        if (status != VAR_OK)
            return field_error(index, "headerCount", status, 32);
        if (header_count < 0)
            return PyUnicode_FromFormat("record %zd: invalid negative headerCount %d",
                                        index, header_count);
        if (header_count > end - pos)
            return PyUnicode_FromFormat(
                "record %zd: headerCount %d exceeds the %zd bytes left in the record",
                index, header_count, end - pos);
        for (int32_t h = 0; h < header_count; h++) {
            int32_t key_length;
            status = read_varint(buf, &pos, end, &key_length);
            if (status != VAR_OK)
                return field_error(index, "headerKeyLength", status, 32);
            if (key_length < 0)
                return PyUnicode_FromFormat("record %zd: invalid negative headerKeyLength %d",
                                            index, key_length);
            if (key_length > end - pos)
                return PyUnicode_FromFormat(
                    "record %zd: headerKey of %d bytes overruns the record", index, key_length);
            pos += key_length;
            READ_BYTES("headerValueLength", "headerValue");
        }
        if (pos != end)
            return PyUnicode_FromFormat("record %zd: length %d but its fields end after %zd bytes",
                                        index, length, pos - start);
    }
    if (pos != size)
        return PyUnicode_FromFormat("%zd bytes remain after the last of %zd records",
                                    size - pos, records_count);
    Py_RETURN_NONE;
}

static PyObject *
walk_records(PyObject *module, PyObject *args)
{
    Py_buffer data;
    Py_ssize_t records_count;
    long long last_offset_delta;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*nL:walk_records", &data, &records_count, &last_offset_delta))
        return NULL;
    PyObject *result = walk((const unsigned char *)data.buf, data.len, records_count,
                            last_offset_delta);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"walk_records", walk_records, METH_VARARGS,
     "walk_records(data, records_count, last_offset_delta) -> None | str\n\n"
     "None if the buffer holds exactly records_count well-formed v2 records whose offset\n"
     "deltas increase up to last_offset_delta; otherwise why not (Kafka: INVALID_RECORD)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "_recordwalk",
    "Walk the records of a v2 record batch in C (see pykafka_ops.records.record_walk).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__recordwalk(void)
{
    return PyModule_Create(&module_def);
}
