import json
import unittest

import numpy as np

from cangen_train.data import load_interactions
from cangen_train.errors import DataFormatError
from cangen_train.features import attach_item_features
from tests.helpers import TempFiles


def user_items(inter, u):
    return [inter.item_ids[i - 1] for i in inter.items[inter.offsets[u]:inter.offsets[u + 1]]]


class ReadersTest(unittest.TestCase):
    def setUp(self):
        self.files = TempFiles()

    def tearDown(self):
        self.files.close()

    def test_sequences_reindex_by_first_appearance(self):
        inter = load_interactions(self.files.write("seq.txt", "u1 10 20 30\nu2 20 40\n\n"))
        self.assertEqual(inter.user_ids, ["u1", "u2"])
        self.assertEqual(inter.item_ids, ["10", "20", "30", "40"])
        self.assertEqual(inter.items.tolist(), [1, 2, 3, 2, 4])
        self.assertEqual(inter.offsets.tolist(), [0, 3, 5])
        self.assertIsNone(inter.times)

    def test_movielens_dat_sorted_by_time_stable_on_ties(self):
        text = "1::100::5::30\n1::200::3::10\n2::100::4::5\n1::300::4::30\n1::400::4::20\n"
        inter = load_interactions(self.files.write("ratings.dat", text))
        self.assertEqual(inter.format, "movielens-dat")
        self.assertEqual(user_items(inter, 0), ["200", "400", "100", "300"])  # 100 and 300 tie at t=30: file order kept
        self.assertEqual(inter.times[inter.offsets[0]:inter.offsets[1]].tolist(), [10, 20, 30, 30])
        self.assertEqual(user_items(inter, 1), ["100"])

    def test_u_data_and_ratings_csv(self):
        inter = load_interactions(self.files.write("u.data", "7\t3\t4\t200\n7\t1\t5\t100\n8\t3\t1\t50\n"))
        self.assertEqual(user_items(inter, 0), ["1", "3"])
        csv_path = self.files.write("ratings.csv", "userId,movieId,rating,timestamp\n1,5,4.0,9\n1,6,3.5,3\n")
        inter = load_interactions(csv_path)
        self.assertEqual(inter.format, "ratings-csv")
        self.assertEqual(user_items(inter, 0), ["6", "5"])

    def test_events_csv_with_actions_and_columns(self):
        path = self.files.write("log.csv", "a,i1,c1,pv,3\na,i2,c1,buy,1\nb,i1,c1,cart,2\n")
        inter = load_interactions(path, columns="user,item,-,action,timestamp")
        self.assertEqual(user_items(inter, 0), ["i2", "i1"])
        self.assertEqual(inter.action_names, ["pv", "buy", "cart"])
        self.assertEqual(inter.actions.tolist(), [2, 1, 3])
        tsv = self.files.write("log.tsv", "user\titem\ttime\tevent\nx\tp\t5\tclick\nx\tq\t4\tview\n")
        inter = load_interactions(tsv)
        self.assertEqual(user_items(inter, 0), ["q", "p"])
        self.assertEqual(inter.action_names, ["click", "view"])

    def test_item_features_json_and_movies_dat(self):
        inter = load_interactions(self.files.write("seq.txt", "u 5 6 7\n"))
        attach_item_features(inter, self.files.write("f.json", json.dumps({"5": [1, 2], "7": [2], "99": [3]})))
        self.assertEqual(inter.feature_names, ["1", "2"])
        self.assertEqual(inter.item_features.tolist(), [[0, 0], [1, 2], [0, 0], [2, 0]])
        inter = load_interactions(self.files.write("seq2.txt", "u 1 2\n"))
        attach_item_features(inter, self.files.write("movies.dat", "1::Toy Story (1995)::Animation|Comedy\n2::X (1999)::Comedy\n"))
        self.assertEqual(inter.item_features[1:].tolist(), [[1, 2], [2, 0]])


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.files = TempFiles()

    def tearDown(self):
        self.files.close()

    def assertFails(self, pattern, fn, *args, **kwargs):
        with self.assertRaises(DataFormatError) as ctx:
            fn(*args, **kwargs)
        self.assertRegex(ctx.exception.message, pattern)
        self.assertEqual(ctx.exception.code, "ERR_DATA_FORMAT")

    def test_empty_and_missing(self):
        self.assertFails("empty file", load_interactions, self.files.write("empty.txt", ""))
        self.assertFails("empty file", load_interactions, self.files.write("blank.txt", "\n\n"))
        self.assertFails("no such file", load_interactions, self.files.path("absent.txt"))
        self.assertFails("format among", load_interactions, self.files.write("x.txt", "u 1\n"), "parquet")

    def test_ragged_rows(self):
        self.assertFails(r"log.csv:3: 2 fields where the first line has 3 \(ragged row\)", load_interactions,
                         self.files.write("log.csv", "u,i,1\nu,j,2\nu,k\n"))
        self.assertFails(r"seq.txt:2: user 'b' has no items", load_interactions, self.files.write("seq.txt", "a 1 2\nb\n"))
        self.assertFails("appears on two lines", load_interactions, self.files.write("dup.txt", "a 1 2\na 3\n"))
        self.assertFails("expected 4 fields", load_interactions, self.files.write("ratings.dat", "1::2::3\n"))
        self.assertFails("timestamp 'noon' is not a number", load_interactions, self.files.write("t.csv", "u,i,noon\n"))
        self.assertFails("none of its item ids match", attach_item_features,
                         load_interactions(self.files.write("s.txt", "u 1 2\n")), self.files.write("f.json", '{"9": [1]}'))

    def test_unknown_columns(self):
        self.assertFails(r"header column\(s\) \['when'\]", load_interactions, self.files.write("h.csv", "user,item,when\nu,i,1\n"))
        self.assertFails("no column for item", load_interactions, self.files.write("n.csv", "user,timestamp\nu,1\n"))
        self.assertFails("names 2 columns", load_interactions, self.files.write("c.csv", "u,i,1\n"), columns="user,item")


if __name__ == "__main__":
    unittest.main()
