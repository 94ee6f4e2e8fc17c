# ticketmon: one image for the receiver (gunicorn), its worker, the exporters and the
# fraud service; docker-compose.yml picks the command per service.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ticketmon ticketmon
COPY receiver receiver
COPY exporters exporters
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin ticketmon
COPY --from=build /install /usr/local
USER ticketmon
WORKDIR /tmp
EXPOSE 10190 10191 10192 10193 10194 10195
ENTRYPOINT []
CMD ["ticketmon", "--help"]
