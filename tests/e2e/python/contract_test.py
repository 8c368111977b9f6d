"""Tailor's contracts from an independent client: Python grpcio, stubs generated from proto/.

Run by tests/e2e/tests/python_client.rs against a system it started; the addresses and tokens
come from the environment:
  TAILOR_GATEWAY, TAILOR_PROFILE, TAILOR_RECOMMEND   host:port of each server
  TAILOR_SERVICE_TOKEN   a service token with profile:read/write and recommend:admin/read
  TAILOR_USER_TOKEN      an app user's token for the gateway
"""

import os
import sys
import tempfile
import unittest

import grpc
import grpc_tools
from grpc_tools import protoc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_status import rpc_status
from google.rpc import error_details_pb2

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PROTO = os.path.join(ROOT, "proto")


def generate_stubs():
    out = tempfile.mkdtemp(prefix="tailor-stubs-")
    files = []
    for base, _, names in os.walk(PROTO):
        files += [os.path.relpath(os.path.join(base, n), PROTO) for n in names if n.endswith(".proto")]
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    code = protoc.main(["protoc", f"-I{PROTO}", f"-I{well_known}", f"--python_out={out}",
                        f"--grpc_python_out={out}", *sorted(files)])
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")
    sys.path.insert(0, out)


generate_stubs()
from tailor.events.v1 import profile_pb2 as events_pb2  # noqa: E402
from tailor.mobile.v1 import mobile_pb2, mobile_pb2_grpc  # noqa: E402
from tailor.profile.v1 import profile_pb2, profile_pb2_grpc  # noqa: E402
from tailor.recommend.v1 import recommend_pb2, recommend_pb2_grpc  # noqa: E402

GATEWAY = os.environ["TAILOR_GATEWAY"]
PROFILE = os.environ["TAILOR_PROFILE"]
RECOMMEND = os.environ["TAILOR_RECOMMEND"]
SERVICE = [("authorization", "Bearer " + os.environ["TAILOR_SERVICE_TOKEN"])]
USER = [("authorization", "Bearer " + os.environ["TAILOR_USER_TOKEN"])]


def now():
    from google.protobuf.timestamp_pb2 import Timestamp
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def bad_fields(error):
    status = rpc_status.from_call(error)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


class Servers(unittest.TestCase):
    def test_every_server_is_serving_and_lists_its_services(self):
        expected = {
            GATEWAY: "tailor.mobile.v1.MobileService",
            PROFILE: "tailor.profile.v1.ProfileService",
            RECOMMEND: "tailor.recommend.v1.RecommendService",
        }
        for address, service in expected.items():
            with grpc.insecure_channel(address) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                self.assertEqual(answer.status, health_pb2.HealthCheckResponse.SERVING)
                self.assertIn(service, ProtoReflectionDescriptorDatabase(channel).get_services())


class Profile(unittest.TestCase):
    def setUp(self):
        self.channel = grpc.insecure_channel(PROFILE)
        self.stub = profile_pb2_grpc.ProfileServiceStub(self.channel)

    def tearDown(self):
        self.channel.close()

    def test_a_mixed_batch_keeps_the_good_events_and_names_the_bad_field(self):
        good = profile_pb2.BehaviorEvent(event_id="py-1", user_id="python-user", item_id="books-0",
                                         type=events_pb2.BEHAVIOR_TYPE_VIEW, occurred_at=now())
        bad = profile_pb2.BehaviorEvent(event_id="py-2", user_id="python-user", item_id="books-0",
                                        type=events_pb2.BEHAVIOR_TYPE_REVIEW, rating=9, occurred_at=now())
        answer = self.stub.RecordEvents(profile_pb2.RecordEventsRequest(events=[good, bad]),
                                        metadata=SERVICE, timeout=5)
        self.assertEqual(answer.accepted_count, 1)
        self.assertEqual([(r.index, r.field) for r in answer.rejected], [(1, "rating")])
        profile = self.stub.GetProfile(profile_pb2.GetProfileRequest(user_id="python-user"),
                                       metadata=SERVICE, timeout=5).profile
        self.assertEqual(profile.event_count, 1)
        self.assertIsInstance(profile.rfm.monetary.amount_minor, int)

    def test_bad_input_is_invalid_argument_with_field_violations(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.GetProfile(profile_pb2.GetProfileRequest(user_id=""), metadata=SERVICE, timeout=5)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(bad_fields(caught.exception), ["user_id"])

    def test_calls_without_a_service_token_are_unauthenticated(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.GetProfile(profile_pb2.GetProfileRequest(user_id="x"),
                                 metadata=[("x-tailor-user-id", "x")], timeout=5)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)


class Recommend(unittest.TestCase):
    def setUp(self):
        self.channel = grpc.insecure_channel(RECOMMEND)
        self.stub = recommend_pb2_grpc.RecommendServiceStub(self.channel)

    def tearDown(self):
        self.channel.close()

    def test_recommendations_are_ranked_and_explained(self):
        answer = self.stub.Recommend(recommend_pb2.RecommendRequest(
            user_id="shopper-0", placement=recommend_pb2.PLACEMENT_HOME, page_size=5), metadata=SERVICE, timeout=5)
        self.assertEqual(len(answer.items), 5)
        scores = [i.score for i in answer.items]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertTrue(all(i.reason for i in answer.items))
        self.assertTrue(answer.recommendation_id)

    def test_frequently_bought_together_reports_association_strength(self):
        answer = self.stub.ListFrequentlyBoughtTogether(
            recommend_pb2.ListFrequentlyBoughtTogetherRequest(item_id="home-0", page_size=5),
            metadata=SERVICE, timeout=5)
        self.assertIn("home-1", [i.item.item_id for i in answer.items])
        self.assertTrue(all(i.lift > 1.0 and 0 < i.confidence <= 1.0 for i in answer.items))

    def test_an_unknown_placement_is_invalid(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Recommend(recommend_pb2.RecommendRequest(user_id="u", placement=42),
                                metadata=SERVICE, timeout=5)
        self.assertEqual(bad_fields(caught.exception), ["placement"])


class Mobile(unittest.TestCase):
    def setUp(self):
        self.channel = grpc.insecure_channel(GATEWAY)
        self.stub = mobile_pb2_grpc.MobileServiceStub(self.channel)

    def tearDown(self):
        self.channel.close()

    def test_home_feed_tracking_and_the_feed_stream(self):
        feed = self.stub.GetHomeFeed(mobile_pb2.GetHomeFeedRequest(
            device_class=mobile_pb2.DEVICE_CLASS_TABLET), metadata=USER, timeout=5).feed
        self.assertEqual(feed.layout.columns, 4)
        self.assertTrue(any(m.state == mobile_pb2.MODULE_STATE_READY for m in feed.modules))
        tracked = self.stub.TrackEvents(mobile_pb2.TrackEventsRequest(events=[
            mobile_pb2.TrackEvent(event_id="py-e1", kind=mobile_pb2.EVENT_KIND_VIEW, item_id="home-2",
                                  occurred_at=now())]), metadata=USER, timeout=5)
        self.assertEqual(tracked.accepted_count, 1)
        stream = self.stub.StreamHomeFeed(mobile_pb2.StreamHomeFeedRequest(), metadata=USER, timeout=10)
        first = next(stream)
        self.assertTrue(first.feed.modules)
        stream.cancel()

    def test_a_forged_user_token_is_unauthenticated(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.GetHomeFeed(mobile_pb2.GetHomeFeedRequest(),
                                  metadata=[("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x")], timeout=5)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)


if __name__ == "__main__":
    unittest.main(verbosity=2)
