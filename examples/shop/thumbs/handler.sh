#!/bin/sh
# Makes a thumbnail of the image named in the event (the demo only says so).
echo '{"statusCode": 200, "body": "thumbnail made"}'
