#!/usr/bin/env bash
# Writes the http_request target's seeds into corpus/http_request/: whole HTTP/1.1 requests
# to the API (engine/server/api_routes.h), with exact Content-Length or chunked bodies.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/corpus/http_request"
mkdir -p "$OUT"

# request NAME METHOD TARGET BODY: a request with a Content-Length body.
request() {
  local len
  len=$(printf '%s' "$4" | wc -c)
  printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1:7470\r\nAuthorization: Bearer tok_0123456789abcdef\r\nIdempotency-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$2" "$3" "$1" "$len" "$4" >"$OUT/seed-$1.http"
}

request report POST /v1/cases \
  '{"category":"200101","place":{"grid":"320501001001001","lat":31.3,"lon":120.6,"has_coordinates":true,"address":"东门街道1号"},"source":"INSPECTOR","urgency":"URGENT","description":"下水道堵塞\n","reporter":{"name":"张三","contact":"138"}}'
request accept POST '/v1/cases/7:accept' '{"work_order_id":"7-1"}'
request resolve POST '/v1/cases/7:resolve' '{"case_id":"7","evidence":["photo://a.jpg"],"note":"done"}'
request approve POST '/v1/cases/12:approveExtension' '{"hours":8}'
request verify POST '/v1/cases/18446744073709551615:verify' '{"passed":false,"reason":"\u6c34"}'
request merge POST '/v1/cases/3:merge' '{"intoCaseId":"2"}'
request dead_letters POST '/v1/deadletters:retry' '{"ids":["7-1","8-1"],"all":false}'
request duplicate_key POST '/v1/cases/7:note' '{"text":"a","text":"b"}'
request nested POST '/v1/cases/7:note' '{"text":[[[[[[[[{"a":[1,2.5e3,-0,true,null]}]]]]]]]]}'
request list GET '/v1/cases?state=dispatched&department=water&limit=10&after=3&overdue=true' ''
printf 'POST /v1/cases/7:requestExtension HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nIdempotency-Key: k\r\n\r\n10\r\n{"hours":16,"re\r\n11\r\nason":"parts 123"\r\n1\r\n}\r\n0\r\n\r\n' \
  >"$OUT/seed-chunked.http"
ls -l "$OUT"
