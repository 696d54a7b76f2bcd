FROM alpine:3.19
RUNN apk add curl
