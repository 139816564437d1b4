//! The parse's native tier. A record is taken here only when it is plainly a well-formed
//! order: valid UTF-8 JSON with no escape in any string, no unknown or repeated field, every
//! field of its type, money written without an exponent that DECIMAL(18,4) holds without
//! rounding, and ids and skus that neither are empty nor start or end with a space or a
//! non-ASCII character. Anything else is refused, and the Python tiers decide it exactly as
//! before (consumer/core/fastpath.py, then consumer/core/exact.py).
//!
//! For what it takes, it gives the Python fast path's columns, value for value, and the same
//! content hash: BLAKE2b-8 of the canonical JSON that msgspec writes for the decoded order
//! (fields in alphabetical order, absent ones left out, money with four decimals). With no
//! escape in the input, each string's bytes are already what msgspec writes for it.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

mod json;
use json::Cursor;

/// Money as DECIMAL(18,4) stores it, when that is exact: its canonical text ("-12.5000") and
/// the value times 10^4.
struct Cash {
    text: String,
    scaled: i128,
}

/// ``text`` (a JSON number) as money, when DECIMAL(18,4) holds it exactly; None to refuse.
fn money(text: &str) -> Option<Cash> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if body.contains(['e', 'E']) {
        return None; // exponents are left to the Python tier
    }
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let frac = frac.trim_end_matches('0');
    // 14 integer digits and 4 decimals are the 18 digits of DECIMAL(18,4).
    if int.len() > 14 || frac.len() > 4 {
        return None;
    }
    let zero = int == "0" && frac.is_empty();
    let mut out = String::with_capacity(int.len() + 6);
    if negative && !zero {
        out.push('-');
    }
    out.push_str(int);
    out.push('.');
    out.push_str(frac);
    for _ in frac.len()..4 {
        out.push('0');
    }
    let digits = out.bytes().filter(u8::is_ascii_digit);
    let magnitude = digits.fold(0i128, |n, d| n * 10 + i128::from(d - b'0'));
    let scaled = if negative { -magnitude } else { magnitude };
    Some(Cash { text: out, scaled })
}

/// Not blank by any reading: non-empty, and neither end a space or a non-ASCII character.
fn plain_id(text: &str) -> bool {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(&a), Some(&b)) => a != b' ' && a < 0x80 && b != b' ' && b < 0x80,
        _ => false,
    }
}

#[derive(Default)]
struct Item<'a> {
    gift_wrap: Option<Option<bool>>,
    price: Option<Cash>,
    quantity: Option<(&'a str, u64)>, // as written (for the hash), and its value
    sku: Option<&'a str>,
}

#[derive(Default)]
struct Metadata<'a> {
    promo: Option<Option<&'a str>>,
    source: Option<Option<&'a str>>,
    store: Option<Option<&'a str>>,
}

/// A decoded order; the outer Option of a field is "present", the inner one "not null".
#[derive(Default)]
struct Order<'a> {
    amount: Option<Option<Cash>>,
    created_at: Option<Option<&'a str>>,
    currency: Option<Option<&'a str>>,
    items: Option<Option<Vec<Item<'a>>>>,
    metadata: Option<Option<Metadata<'a>>>,
    order_id: Option<&'a str>,
    user_id: Option<Option<&'a str>>,
}

fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None; // a repeated field
    }
    *slot = Some(value);
    Some(())
}

fn item<'a>(c: &mut Cursor<'a>, max_quantity: u64) -> Option<Item<'a>> {
    let mut it = Item::default();
    c.object(|c, key| match key {
        "gift_wrap" => set(&mut it.gift_wrap, c.nullable(Cursor::boolean)?),
        "price" => set(&mut it.price, money(c.number()?)?),
        "quantity" => {
            let text = c.number()?;
            // An integer literal 1..=max: no sign, fraction or exponent.
            if !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 19 {
                return None;
            }
            let value: u64 = text.parse().ok()?;
            if value < 1 || value > max_quantity {
                return None;
            }
            set(&mut it.quantity, (text, value))
        }
        "sku" => {
            let sku = c.string()?;
            if !plain_id(sku) {
                return None;
            }
            set(&mut it.sku, sku)
        }
        _ => None,
    })?;
    (it.price.is_some() && it.quantity.is_some() && it.sku.is_some()).then_some(it)
}

fn metadata<'a>(c: &mut Cursor<'a>) -> Option<Metadata<'a>> {
    let mut m = Metadata::default();
    c.object(|c, key| {
        let slot = match key {
            "promo" => &mut m.promo,
            "source" => &mut m.source,
            "store" => &mut m.store,
            _ => return None,
        };
        set(slot, c.nullable(Cursor::string)?)
    })?;
    Some(m)
}

fn order<'a>(value: &'a [u8], max_quantity: u64) -> Option<Order<'a>> {
    let text = std::str::from_utf8(value).ok()?;
    let mut c = Cursor::new(text);
    let mut o = Order::default();
    c.object(|c, key| match key {
        "amount" => set(&mut o.amount, c.nullable(|c| money(c.number()?))?),
        "created_at" => set(&mut o.created_at, c.nullable(Cursor::string)?),
        "currency" => set(&mut o.currency, c.nullable(Cursor::string)?),
        "items" => set(
            &mut o.items,
            c.nullable(|c| c.array(|c| item(c, max_quantity)))?,
        ),
        "metadata" => set(&mut o.metadata, c.nullable(metadata)?),
        "order_id" => {
            let id = c.string()?;
            if !plain_id(id) {
                return None;
            }
            set(&mut o.order_id, id)
        }
        "user_id" => set(&mut o.user_id, c.nullable(Cursor::string)?),
        _ => None,
    })?;
    c.end()?;
    o.order_id.is_some().then_some(o)
}

/// Writes a JSON object's fields, each only when present, as msgspec encodes a struct.
struct Fields<'b> {
    out: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> Fields<'b> {
    fn open(out: &'b mut Vec<u8>) -> Self {
        out.push(b'{');
        Fields { out, first: true }
    }
    fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }
    fn close(self) {
        self.out.push(b'}');
    }
}

fn raw(out: &mut Vec<u8>, value: Option<&str>) {
    out.extend_from_slice(value.unwrap_or("null").as_bytes());
}

fn string(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(s) => {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn canonical(o: &Order, out: &mut Vec<u8>) {
    let mut f = Fields::open(out);
    if let Some(v) = &o.amount {
        raw(f.key("amount"), v.as_ref().map(|c| c.text.as_str()));
    }
    if let Some(v) = o.created_at {
        string(f.key("created_at"), v);
    }
    if let Some(v) = o.currency {
        string(f.key("currency"), v);
    }
    if let Some(items) = &o.items {
        let out = f.key("items");
        match items {
            None => out.extend_from_slice(b"null"),
            Some(items) => {
                out.push(b'[');
                for (n, it) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    let mut g = Fields::open(out);
                    if let Some(w) = it.gift_wrap {
                        raw(
                            g.key("gift_wrap"),
                            w.map(|b| if b { "true" } else { "false" }),
                        );
                    }
                    raw(g.key("price"), it.price.as_ref().map(|c| c.text.as_str()));
                    raw(g.key("quantity"), it.quantity.map(|(text, _)| text));
                    string(g.key("sku"), it.sku);
                    g.close();
                }
                out.push(b']');
            }
        }
    }
    if let Some(meta) = &o.metadata {
        let out = f.key("metadata");
        match meta {
            None => out.extend_from_slice(b"null"),
            Some(m) => {
                let mut g = Fields::open(out);
                for (name, v) in [("promo", m.promo), ("source", m.source), ("store", m.store)] {
                    if let Some(v) = v {
                        string(g.key(name), v);
                    }
                }
                g.close();
            }
        }
    }
    string(f.key("order_id"), o.order_id);
    if let Some(v) = o.user_id {
        string(f.key("user_id"), v);
    }
    f.close();
}

fn content_hash(o: &Order, buffer: &mut Vec<u8>) -> i64 {
    buffer.clear();
    canonical(o, buffer);
    let hash = blake2b_simd::Params::new().hash_length(8).hash(buffer);
    let mut digest = [0u8; 8];
    digest.copy_from_slice(hash.as_bytes());
    i64::from_le_bytes(digest)
}

/// A column of text as Arrow lays it out: validity bits, 32-bit offsets, the bytes.
#[derive(Default)]
struct Text {
    valid: Bits,
    offsets: Vec<i32>,
    data: Vec<u8>,
}

impl Text {
    fn push(&mut self, value: Option<&str>) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.valid.push(value.is_some());
        self.data.extend_from_slice(value.unwrap_or("").as_bytes());
        self.offsets
            .push(i32::try_from(self.data.len()).expect("a batch's text is under 2 GiB"));
    }
}

/// Arrow validity bits (least significant bit first), and how many are unset.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    len: usize,
    nulls: usize,
}

impl Bits {
    fn push(&mut self, set: bool) {
        if self.len.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if set {
            *self.bytes.last_mut().expect("pushed above") |= 1 << (self.len % 8);
        } else {
            self.nulls += 1;
        }
        self.len += 1;
    }
}

/// Money as Arrow's decimal128(18, 4): the value times 10^4, little-endian 128-bit integers.
#[derive(Default)]
struct Money {
    valid: Bits,
    values: Vec<u8>,
}

impl Money {
    fn push(&mut self, value: Option<i128>) {
        self.valid.push(value.is_some());
        self.values
            .extend_from_slice(&value.unwrap_or(0).to_le_bytes());
    }
}

#[derive(Default)]
struct Columns {
    refused: Vec<u32>,
    idx: Vec<u32>,
    order_id: Text,
    user_id: Text,
    amount: Money,
    currency: Text,
    created_raw: Text,
    source: Text,
    promo: Text,
    content_hash: Vec<i64>,
    line_idx: Vec<u32>,
    line_number: Vec<u32>,
    sku: Text,
    quantity: Vec<i64>,
    unit_price: Money,
}

fn decode_all(values: &[Option<&[u8]>], max_quantity: u64) -> Columns {
    let mut c = Columns::default();
    let mut buffer = Vec::with_capacity(512);
    for (idx, value) in values.iter().enumerate() {
        let idx = u32::try_from(idx).expect("a batch has fewer than 2**32 records");
        let Some(o) = value.and_then(|v| order(v, max_quantity)) else {
            c.refused.push(idx);
            continue;
        };
        c.content_hash.push(content_hash(&o, &mut buffer));
        c.idx.push(idx);
        c.order_id.push(o.order_id);
        c.user_id.push(o.user_id.flatten());
        c.currency.push(o.currency.flatten());
        c.created_raw.push(o.created_at.flatten());
        let meta = o.metadata.as_ref().and_then(Option::as_ref);
        c.source.push(meta.and_then(|m| m.source.flatten()));
        c.promo.push(meta.and_then(|m| m.promo.flatten()));
        c.amount.push(o.amount.flatten().map(|c| c.scaled));
        if let Some(Some(items)) = o.items {
            for (n, it) in (1..).zip(items) {
                c.line_idx.push(idx);
                c.line_number.push(n);
                c.sku.push(it.sku);
                let quantity = it.quantity.map_or(0, |(_, value)| value);
                c.quantity
                    .push(i64::try_from(quantity).expect("at most max_quantity"));
                c.unit_price.push(it.price.map(|c| c.scaled));
            }
        }
    }
    c
}

fn numbers<const N: usize, T: Copy>(
    py: Python<'_>,
    values: &[T],
    to_bytes: fn(T) -> [u8; N],
) -> Py<PyAny> {
    let mut bytes = Vec::with_capacity(values.len() * N);
    for &v in values {
        bytes.extend_from_slice(&to_bytes(v));
    }
    let no_validity: Option<Py<PyAny>> = None;
    (no_validity, PyBytes::new(py, &bytes))
        .into_pyobject(py)
        .expect("a tuple")
        .into_any()
        .unbind()
}

fn text(py: Python<'_>, t: &Text) -> Py<PyAny> {
    let offsets: Vec<u8> = if t.offsets.is_empty() {
        vec![0; 4]
    } else {
        t.offsets.iter().flat_map(|o| o.to_le_bytes()).collect()
    };
    let valid = (t.valid.nulls > 0).then(|| PyBytes::new(py, &t.valid.bytes));
    (valid, PyBytes::new(py, &offsets), PyBytes::new(py, &t.data))
        .into_pyobject(py)
        .expect("a tuple")
        .into_any()
        .unbind()
}

fn money_column(py: Python<'_>, m: &Money) -> Py<PyAny> {
    let valid = (m.valid.nulls > 0).then(|| PyBytes::new(py, &m.valid.bytes));
    (valid, PyBytes::new(py, &m.values))
        .into_pyobject(py)
        .expect("a tuple")
        .into_any()
        .unbind()
}

/// decode(values, max_quantity) -> (refused, orders, lines): the positions refused, and the
/// taken records' columns as Arrow buffers, by name: (validity or None, offsets, bytes) for
/// text, (validity or None, values) for numbers (uint32 positions and line numbers, int64
/// hashes and quantities, decimal128(18, 4) money).
#[pyfunction]
fn decode<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyList>,
    max_quantity: u64,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let items: Vec<Bound<'py, PyAny>> = values.iter().collect();
    let mut bytes: Vec<Option<&[u8]>> = Vec::with_capacity(items.len());
    for item in &items {
        bytes.push(item.cast::<PyBytes>().ok().map(|b| b.as_bytes()));
    }
    let c = decode_all(&bytes, max_quantity);
    let u32s: fn(u32) -> [u8; 4] = u32::to_le_bytes;
    let i64s: fn(i64) -> [u8; 8] = i64::to_le_bytes;
    let orders = PyDict::new(py);
    orders.set_item("idx", numbers(py, &c.idx, u32s))?;
    orders.set_item("order_id", text(py, &c.order_id))?;
    orders.set_item("user_id", text(py, &c.user_id))?;
    orders.set_item("amount", money_column(py, &c.amount))?;
    orders.set_item("currency", text(py, &c.currency))?;
    orders.set_item("created_raw", text(py, &c.created_raw))?;
    orders.set_item("source", text(py, &c.source))?;
    orders.set_item("promo", text(py, &c.promo))?;
    orders.set_item("content_hash", numbers(py, &c.content_hash, i64s))?;
    let lines = PyDict::new(py);
    lines.set_item("idx", numbers(py, &c.line_idx, u32s))?;
    lines.set_item("line_number", numbers(py, &c.line_number, u32s))?;
    lines.set_item("sku", text(py, &c.sku))?;
    lines.set_item("quantity", numbers(py, &c.quantity, i64s))?;
    lines.set_item("unit_price", money_column(py, &c.unit_price))?;
    Ok((PyList::new(py, &c.refused)?, orders, lines))
}

/// key_hashes(offsets, data) -> bytes: for each string of an Arrow large-string column
/// (int64 offsets, little-endian, and its bytes), the low 64 bits of its MD5 as DuckDB's
/// md5_number_lower gives them (digest bytes 8 to 15, little-endian), as uint64 little-endian.
#[pyfunction]
fn key_hashes<'py>(py: Python<'py>, offsets: &[u8], data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    if !offsets.len().is_multiple_of(8) || offsets.is_empty() {
        return Err(PyValueError::new_err(
            "offsets: a whole number of int64, at least one",
        ));
    }
    let ends: Vec<usize> = offsets
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .collect();
    let mut out = Vec::with_capacity((ends.len() - 1) * 8);
    for pair in ends.windows(2) {
        let key = data
            .get(pair[0]..pair[1])
            .ok_or_else(|| PyValueError::new_err("offsets out of the data's range"))?;
        let digest = md5::compute(key).0;
        out.extend_from_slice(&digest[8..16]);
    }
    Ok(PyBytes::new(py, &out))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(key_hashes, m)?)
}
